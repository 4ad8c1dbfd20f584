//! Step 3b (SDN I/O): one managed side's routes, once its peer is in place: the interconnect's
//! filter ensured on the speaker (0 writes when it is as wanted, so this is also how drift is
//! repaired), then what the speaker sends to and accepts from the other side, read back.
use super::super::Context;
use super::super::problem::Problem;
use super::super::speakers::speaker_key;
use super::plan::RoutesPlan;
use crate::sdn::routes::ImportRule;
use crate::sdn::{RouteCounts, RouteFilter, RoutesOutcome, SdnBackend, SdnTarget, SegmentsSeen};

/// What the routes step found on one side.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutesFacts {
    /// The filter's outcome.
    pub filter: Result<RoutesOutcome, Problem>,
    /// The counts towards the other side (`None`: not read, the filter failed).
    pub counts: Option<Result<RouteCounts, Problem>>,
    /// The other cell's EVPN routes (`None`: not read: nothing is stretched, or the filter failed).
    pub segments: Option<Result<SegmentsSeen, Problem>>,
}

/// Ensures the filter and reads the counts; `None` when there is no filter to ensure (the other
/// endpoint's address is not an IP, which the peer step reports).
pub async fn exchange(
    ctx: &Context,
    backend: &dyn SdnBackend,
    target: &SdnTarget,
    plan: &RoutesPlan,
) -> Option<RoutesFacts> {
    let filter = plan.filter.as_ref()?;
    let outcome = {
        let _timer = ctx.metrics.sdn_timer(target, "ensure_route_filter");
        backend.ensure_route_filter(filter).await.map_err(Problem::from)
    };
    if matches!(outcome, Ok(RoutesOutcome::Updated { .. })) {
        ctx.speakers.wrote_routes(&speaker_key(target.kind, &target.url));
    }
    if outcome.is_err() {
        return Some(RoutesFacts {
            filter: outcome,
            counts: None,
            segments: None,
        });
    }
    let counts = match &plan.origination {
        None => None,
        Some(origination) => {
            let _timer = ctx.metrics.sdn_timer(target, "observe_routes");
            let neighbor = filter.neighbors[0];
            // Asked about exactly the expected networks, the backend lists those missing, also
            // under `import: Any` (which filters nothing and so names nothing).
            let asked = RouteFilter {
                import: ImportRule::Only(plan.carried.expected_in.clone()),
                ..filter.clone()
            };
            Some(
                backend
                    .observe_routes(origination, std::slice::from_ref(&asked))
                    .await
                    .map(|mut by_neighbor| by_neighbor.remove(&neighbor).unwrap_or_default())
                    .map_err(Problem::from),
            )
        }
    };
    let segments = match filter.evpn {
        None => None,
        Some(_) => {
            let _timer = ctx.metrics.sdn_timer(target, "observe_segments");
            let seen = backend.observe_segments(filter.neighbors[0]).await;
            Some(seen.map_err(Problem::from))
        }
    };
    Some(RoutesFacts {
        filter: outcome,
        counts,
        segments,
    })
}
