/* Error codes and messages: see core.h. */
#include <stdio.h>
#include <uv.h>

#include "chorus/core.h"

int core_err_set(core_err_t *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *core_strerror(int code)
{
    switch (code) {
    case CORE_OK:
        return "ok";
    case CORE_ERR_INVALID:
        return "invalid";
    case CORE_ERR_LIMIT:
        return "limit";
    case CORE_ERR_NOT_FOUND:
        return "not_found";
    case CORE_ERR_EXISTS:
        return "exists";
    case CORE_ERR_IO:
        return "io";
    case CORE_ERR_TIMEOUT:
        return "timeout";
    case CORE_ERR_PROTOCOL:
        return "protocol";
    case CORE_ERR_BUSY:
        return "busy";
    case CORE_ERR_CLOSED:
        return "closed";
    case CORE_ERR_UNSUPPORTED:
        return "unsupported";
    case CORE_ERR_DENIED:
        return "denied";
    case CORE_ERR_INTERNAL:
        return "internal";
    default:
        return code < 0 && code > -4096 ? uv_err_name(code) : "unknown";
    }
}
