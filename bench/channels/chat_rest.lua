-- wrk script: 3-turn conversations over chorus's chat REST API (keep-alive).
-- Turns are spread over the conversations listed in CHORUS_IDS_FILE (one id
-- a line, created beforehand), each thread taking every n-th one; each
-- conversation cycles through "sign me up", a name and a city.
local texts = {"sign me up", "Ada", "London"}
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  local nthreads = 0
  for _ in pairs(threads) do nthreads = nthreads + 1 end
  ids, steps, cursor = {}, {}, 0
  local i = 0
  for line in io.lines(os.getenv("CHORUS_IDS_FILE")) do
    i = i + 1
    if (i % tonumber(os.getenv("CHORUS_THREADS") or "2")) == (tid - 1) then
      ids[#ids + 1] = line
      steps[#ids] = 0
    end
  end
  headers = {["Content-Type"] = "application/json",
             ["Authorization"] = "Bearer " .. os.getenv("CHORUS_KEY")}
end

function request()
  cursor = cursor % #ids + 1
  local s = steps[cursor]
  steps[cursor] = (s + 1) % 3
  return wrk.format("POST", "/v1/chat/conversations/" .. ids[cursor] .. "/messages", headers,
                    '{"text":"' .. texts[s + 1] .. '"}')
end
