--[[
  The overlap policies of a recurring job (README.md, "Overlap"), decided inside the script that
  hands an occurrence out (claim for every-N, advance for cron), reading the job's history only
  through newestRun. runs: the call's {last = <prefix>lastrun, prefix = history prefix, batch =
  the claim's newest runs (readNewest) or nil, bound = runs kept, name = the poller's name, now =
  TIME}, or false when the call records no runs (history=0: every policy acts as 'allow').

  runningUntil(runs, id): the deadline (ms) of the job's newest run handed out while it is
  running and not past it (it blocks), and the skipped runs recorded ahead of it; else false.
  overlapSkip(runs, id, due): 'skip': true if the occurrence due (text) is not to be handed out,
  having recorded it skipped ('overlap').
  overlapBuffer(runs, id): 'buffer_one': the time (ms) to hold the job until, the blocking run's
  deadline (finishRun brings it back at once when that run finishes), or false to hand it out.
  overlapPending(runs, id, due): 'buffer_one': when the job resumes from (text), the earlier of
  its due time and just after its newest run's occurrence: a job held at a deadline, or brought
  back by finishRun, hands out the latest occurrence since that run, the one held (later ones
  coalesce into it).
]]
--- @include "time"
--- @include "history"

local function nowMsOf(now)
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

local function runningUntil(runs, id)
  local state, deadline, _, ahead, newest = newestRun(runs, id)
  if state == 'r' and deadline and deadline > nowMsOf(runs.now) then
    return deadline, ahead, newest
  end
  return false
end

local function overlapSkip(runs, id, due)
  if not runs then
    return false
  end
  local blocked, ahead, newest = runningUntil(runs, id)
  if not blocked then
    return false
  end
  pushSkipped(runs, id, due, 'overlap', ahead, newest)
  return true
end

local function overlapBuffer(runs, id)
  return runs and runningUntil(runs, id) or false
end

local function overlapPending(runs, id, due)
  if not runs then
    return due
  end
  local _, _, newestDue = newestRun(runs, id)
  local after = newestDue and tonumber(newestDue) and timeMs(newestDue) + 1
  if after and after < timeMs(due) then
    return timeString(after / 1000)
  end
  return due
end
