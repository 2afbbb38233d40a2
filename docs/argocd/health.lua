-- Argo CD health check for modeldeploy.io/ModelDeployment (see docs/argocd/README.md).
-- Healthy: the wanted version serves all traffic. Progressing: a rollout (or the first
-- deployment) is under way, or the operator has not yet seen the latest spec.
-- Suspended: paused, waiting for a person or for metrics. Degraded: the last rollout was
-- rolled back, aborted or not adopted (the previous version still serves), or the spec is
-- invalid. Tested against statuses of every phase: tests/adoption/test_argocd_health.py.
local hs = {}
local st = obj.status
local generation = obj.metadata and obj.metadata.generation or 0
if st == nil or st.phase == nil or st.phase == "" then
  if st ~= nil and st.message ~= nil and st.message ~= "" and (st.observedGeneration or 0) >= generation then
    hs.status = "Degraded"
    hs.message = st.message
  else
    hs.status = "Progressing"
    hs.message = "Waiting for the modeldeploy operator to act on this ModelDeployment"
  end
  return hs
end
local phase = st.phase
local message = st.message or phase
if (st.observedGeneration or 0) < generation and phase ~= "Paused" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. generation .. " (" .. phase .. ")"
  return hs
end
if phase == "Stable" then
  hs.status = "Healthy"
elseif phase == "Paused" then
  hs.status = "Suspended"
  if st.pauseReason ~= nil then
    message = "Paused (" .. st.pauseReason .. "): " .. message
  end
elseif phase == "Failed" then
  hs.status = "Degraded"
  local last = st.lastRollout
  if last ~= nil and last.version ~= nil then
    message = last.version .. " " .. (last.result or "failed") .. ": " .. (last.reason or message)
  end
elseif phase == "Pending" or phase == "Shadowing" or phase == "Progressing" or phase == "ABTesting"
    or phase == "Promoting" or phase == "RollingBack" then
  hs.status = "Progressing"
else
  hs.status = "Unknown"
end
hs.message = message
return hs
