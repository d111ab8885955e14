-- wrk script: POST a small JSON body (the echo route answers it back).
wrk.method = "POST"
wrk.body = '{"text":"hello, chorus","n":42,"tags":["a","b"]}'
wrk.headers["Content-Type"] = "application/json"
