//! Bounds on what one GoBGP answer may make the controller hold. gobgpd has no authentication and
//! `spec.sdn.url` may name any server, so a hostile or broken one could stream peers for as long
//! as the call's timeout lets it: the stream is cut at these limits and the call fails.

/// Most peers a `ListPeer` of the whole speaker may return (a speaker with thousands of peers
/// answers well below it).
pub const MAX_LISTED_PEERS: usize = 10_000;
/// Most peers a `ListPeer` of one address may return (gobgpd returns at most one).
pub const MAX_PEERS_OF_ONE_ADDRESS: usize = 4;
/// Most bytes (as encoded on the wire) of one listing: the limit of HTTP answers.
pub const MAX_LISTED_BYTES: usize = crate::body::MAX_BODY;

/// Items collected from a stream up to a count and a byte limit.
#[derive(Debug)]
pub struct Capped<T> {
    items: Vec<T>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
}

impl<T> Capped<T> {
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        Self {
            items: Vec::new(),
            bytes: 0,
            max_items,
            max_bytes,
        }
    }

    /// Adds one message's `items` of `encoded` bytes; `Err` with the reason once over a limit.
    pub fn extend(&mut self, items: impl IntoIterator<Item = T>, encoded: usize) -> Result<(), String> {
        self.bytes += encoded;
        if self.bytes > self.max_bytes {
            return Err(format!(
                "the answer is larger than {} bytes, cellnet's limit",
                self.max_bytes
            ));
        }
        self.items.extend(items);
        if self.items.len() > self.max_items {
            return Err(format!(
                "the answer lists more than {} peers, cellnet's limit",
                self.max_items
            ));
        }
        Ok(())
    }

    pub fn into_items(self) -> Vec<T> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_cut_at_the_count_or_the_size() {
        let mut c = Capped::new(3, 100);
        c.extend([1, 2], 10).unwrap();
        c.extend([3], 10).unwrap();
        let err = c.extend([4], 10).unwrap_err();
        assert!(err.contains("more than 3 peers"), "{err}");

        let mut c = Capped::new(1000, 100);
        c.extend([1], 60).unwrap();
        let err = c.extend([2], 60).unwrap_err();
        assert!(err.contains("larger than 100 bytes"), "{err}");
        assert!(Capped::<u8>::new(10, 100).into_items().is_empty());
    }
}
