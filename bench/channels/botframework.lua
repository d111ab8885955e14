-- wrk script: 3-turn conversations against the Bot Framework peer, one
-- activity per request with deliveryMode "expectReplies" (one request = one
-- turn), spread over 10,000 conversation ids like chat_rest.lua.
local texts = {"sign me up", "Ada", "London"}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  steps, cursor, first = {}, 0, tid * 1000000
  for i = 1, 5000 do steps[i] = 0 end
  headers = {["Content-Type"] = "application/json"}
end

function request()
  cursor = cursor % 5000 + 1
  local s = steps[cursor]
  steps[cursor] = (s + 1) % 3
  local conv = "c" .. (first + cursor)
  local body = '{"type":"message","deliveryMode":"expectReplies","channelId":"bench",' ..
    '"serviceUrl":"http://127.0.0.1:1","id":"a' .. cursor .. '","text":"' .. texts[s + 1] .. '",' ..
    '"conversation":{"id":"' .. conv .. '"},"from":{"id":"u' .. conv .. '"},"recipient":{"id":"bot"}}'
  return wrk.format("POST", "/api/messages", headers, body)
end
