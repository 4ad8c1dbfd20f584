-- Argo CD health check for cellnet.io/v1alpha1 CellInterconnect and InfraEndpoint.
-- Install it for both kinds with `resource.customizations` (see docs/gitops.md, "Argo CD").
-- Written for Lua 5.1 (Argo CD runs gopher-lua); tested with lua5.1 and lua5.4 in tests/packaging.rs.
--
-- The status follows kstatus: observedGeneration, and the conditions Ready, Reconciling (present
-- only while True) and Stalled (present only while True).
--   Suspended    spec.suspend is true, or the session is administratively down (adminState)
--   Progressing  the controller has not seen the latest spec yet, or Reconciling is True
--   Degraded     Stalled is True (needs a change to make progress), or Ready is False otherwise
--   Healthy      Ready is True
local hs = {}

local function condition(conditions, type_)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local kind = obj.kind or "object"
local generation = obj.metadata and obj.metadata.generation
local status = obj.status
local suspended = obj.spec ~= nil and obj.spec.suspend == true

if suspended then
  hs.status = "Suspended"
  hs.message = "Reconciliation is suspended (spec.suspend)"
  return hs
end

if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for cellnet-controller to report the " .. kind .. "'s status"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for cellnet-controller to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
local reconciling = condition(status.conditions, "Reconciling")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

if ready ~= nil and (ready.reason == "AdministrativelyDown" or ready.reason == "Suspended") then
  hs.status = "Suspended"
  hs.message = text(ready, ready.reason)
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

hs.status = "Degraded"
hs.message = text(ready, "Not ready")
return hs
