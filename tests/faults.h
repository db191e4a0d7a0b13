/* Failure injection for the tests. The test binary is linked with -Wl,--wrap for every
 * allocator the project's code calls (tests/CMakeLists.txt), so that each allocation made by
 * sim/, planner/, reports/ and the tests passes through tests/faults.c; allocations made inside
 * shared libraries (libyaml, GSL, libc's own) do not. Outside a fault_begin/fault_end session
 * the wrappers only call the real functions. Within one they count every allocation, make the
 * chosen one fail (NULL, errno ENOMEM), and hold every allocation, stream and directory still
 * open, so that a leak shows without LeakSanitizer. */
#ifndef ISIM_FAULTS_H
#define ISIM_FAULTS_H

#include <stdbool.h>
#include <stddef.h>

/* What a session saw. */
typedef struct fault_stats {
    size_t calls;      /* allocations asked for (the failed one included) */
    bool failed;       /* the chosen allocation was reached and failed */
    size_t live;       /* allocations, streams and directories not given back */
    size_t first_live; /* the call number (from 1) of the earliest of them; 0 when none */
} fault_stats;

/* Starts a session in which allocation number fail_at (counting from 1) fails; 0: none. */
void fault_begin(size_t fail_at);
/* Ends the session. */
fault_stats fault_end(void);

/* The call numbers of the last session's allocations that open a stream or a directory or
 * grow a memory stream, in order: the paths a sampled loop fails every time.
 * fault_marked(i) is the i-th (from 0); 0 past the last or past FAULT_MARKS. */
#define FAULT_MARKS 4096
size_t fault_marked(size_t i);

/* The wrappers, for cJSON_InitHooks. */
void *__wrap_malloc(size_t n);
void __wrap_free(void *p);

#endif
