-- wrk script: 3-turn conversations over chorus's chat REST API (keep-alive).
-- Turns are spread over the conversations listed in CHORUS_IDS_FILE (one id
-- a line, created beforehand), each thread taking every n-th one; each
-- conversation cycles through "sign me up", a name and a city.
--
-- Each request is the conversation's path between two strings built once
-- (the request line's start; the rest of the line, the headers and the
-- body of each step), one concatenation per request: the load generator
-- shares the machine's cores with chorusd, and wrk.format's per-request
-- table and string.format calls cost it several microseconds a request
-- that nginx's static request (post.lua) does not pay.
local texts = {"sign me up", "Ada", "London"}
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  ids, steps, cursor = {}, {}, 0
  local i = 0
  for line in io.lines(os.getenv("CHORUS_IDS_FILE")) do
    i = i + 1
    if (i % tonumber(os.getenv("CHORUS_THREADS") or "2")) == (tid - 1) then
      ids[#ids + 1] = line
      steps[#ids] = 0
    end
  end
  tails = {}
  for s, text in ipairs(texts) do
    local body = '{"text":"' .. text .. '"}'
    tails[s] = "/messages HTTP/1.1\r\nHost: " .. wrk.headers["Host"] ..
      "\r\nContent-Type: application/json\r\nAuthorization: Bearer " .. os.getenv("CHORUS_KEY") ..
      "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
  end
end

function request()
  cursor = cursor % #ids + 1
  local s = steps[cursor]
  steps[cursor] = (s + 1) % 3
  return "POST /v1/chat/conversations/" .. ids[cursor] .. tails[s + 1]
end
