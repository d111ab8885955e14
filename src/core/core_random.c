/* Random ids (see core.h). */
#include <stdint.h>
#include <sys/random.h>

#include "chorus/core.h"

void core_random_hex(char *out, size_t nbytes)
{
    uint8_t b[64];
    if (nbytes > sizeof(b))
        nbytes = sizeof(b);
    if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) {
        /* getrandom(2) does not fail once the pool is initialised; be safe */
        uint64_t t = core_now_us() ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < nbytes; i++, t = t * 6364136223846793005ULL + 1)
            b[i] = (uint8_t)(t >> 56);
    }
    core_hex_encode(b, nbytes, out);
}
