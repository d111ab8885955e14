-- wrk script: a small JSON POST (the nginx static-response ceiling).
wrk.method = "POST"
wrk.body = '{"text":"hello"}'
wrk.headers["Content-Type"] = "application/json"
