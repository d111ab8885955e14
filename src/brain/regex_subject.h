/* regex_subject.h — the text a PCRE2 match runs on, as a copy that ends in
 * zeros. PCRE2's JIT code reads the subject with 16-byte vector loads that
 * may run up to 16 bytes past its end (never across a page, so harmless),
 * and a memory checker reports those bytes as reads outside the caller's
 * block (valgrind: "Invalid read of size 16"). Matching a padded copy keeps
 * the checkers meaningful at the cost of one copy of at most a turn's text.
 * Loop and pool threads alike: the copy is per thread. */
#ifndef CHORUS_REGEX_SUBJECT_H
#define CHORUS_REGEX_SUBJECT_H

#include <stddef.h>

/* A copy of s[0..n) followed by 32 zero bytes, valid until the thread's
 * next call; s itself when n is over 64 KiB. */
const char *re_subject(const char *s, size_t n);

#endif
