/* The allocation wrappers of tests/faults.h. A session holds a lock around its bookkeeping
 * (the planner and the scenario runner may allocate from worker threads) and keeps the live
 * allocations in an open-addressing table of its own, allocated with the real calloc. A
 * pointer the table does not hold (allocated outside the session, or by a shared library)
 * is freed without being counted. */
#define _GNU_SOURCE /* fopencookie */
#include "faults.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
FILE *__real_open_memstream(char **buf, size_t *size);
FILE *__real_fopen(const char *path, const char *mode);
FILE *__real_fdopen(int fd, const char *mode);
int __real_fclose(FILE *f);
DIR *__real_opendir(const char *path);
int __real_closedir(DIR *d);

void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
FILE *__wrap_open_memstream(char **buf, size_t *size);
FILE *__wrap_fopen(const char *path, const char *mode);
FILE *__wrap_fdopen(int fd, const char *mode);
int __wrap_fclose(FILE *f);
DIR *__wrap_opendir(const char *path);
int __wrap_closedir(DIR *d);

typedef struct {
    const void *p; /* NULL: empty */
    size_t serial; /* its call number */
} slot;

static atomic_bool active;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t calls, fail_at;
static bool failed;
static slot *table;
static size_t bits, used;
static size_t marks[FAULT_MARKS], n_marks;

static size_t home(const void *p)
{
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15u) >> (64 - bits));
}

static void put(const void *p, size_t serial)
{
    size_t mask = ((size_t)1 << bits) - 1, i = home(p);
    while (table[i].p)
        i = (i + 1) & mask;
    table[i] = (slot){p, serial};
    used++;
}

/* Doubles the table at half full; the bookkeeping of a test cannot go on without it. */
static void grow(void)
{
    if (table && (used + 1) * 2 <= (size_t)1 << bits)
        return;
    slot *old = table;
    size_t old_n = old ? (size_t)1 << bits : 0;
    bits = old ? bits + 1 : 12;
    table = __real_calloc((size_t)1 << bits, sizeof *table);
    if (!table) {
        fputs("faults: no memory for the table of live allocations\n", stderr);
        abort();
    }
    used = 0;
    for (size_t i = 0; i < old_n; i++)
        if (old[i].p)
            put(old[i].p, old[i].serial);
    __real_free(old);
}

static void track(const void *p, size_t serial)
{
    grow();
    put(p, serial);
}

/* Removes p (linear probing's backward shift); false when the table does not hold it. */
static bool untrack(const void *p)
{
    if (!table || !p)
        return false;
    size_t mask = ((size_t)1 << bits) - 1, i = home(p);
    while (table[i].p != p) {
        if (!table[i].p)
            return false;
        i = (i + 1) & mask;
    }
    for (size_t j = (i + 1) & mask; table[j].p; j = (j + 1) & mask) {
        size_t h = home(table[j].p);
        /* the entry at j may move into the hole at i unless its home lies in (i, j] */
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (!stays) {
            table[i] = table[j];
            i = j;
        }
    }
    table[i] = (slot){NULL, 0};
    used--;
    return true;
}

void fault_begin(size_t n)
{
    pthread_mutex_lock(&lock);
    calls = 0;
    fail_at = n;
    failed = false;
    used = 0;
    n_marks = 0;
    if (table)
        memset(table, 0, ((size_t)1 << bits) * sizeof *table);
    atomic_store(&active, true);
    pthread_mutex_unlock(&lock);
}

fault_stats fault_end(void)
{
    pthread_mutex_lock(&lock);
    atomic_store(&active, false);
    fault_stats s = {.calls = calls, .failed = failed, .live = used};
    for (size_t i = 0; table && i < (size_t)1 << bits; i++)
        if (table[i].p && (!s.first_live || table[i].serial < s.first_live))
            s.first_live = table[i].serial;
    pthread_mutex_unlock(&lock);
    return s;
}

size_t fault_marked(size_t i)
{
    pthread_mutex_lock(&lock);
    size_t m = i < n_marks ? marks[i] : 0;
    pthread_mutex_unlock(&lock);
    return m;
}

/* Within a session (the lock held): counts one allocation, and marks it (it opens a stream
 * or a directory, or grows a memory stream); true when it is the one to fail, with errno
 * ENOMEM. */
static bool fails(bool marked)
{
    ++calls;
    if (marked && n_marks < FAULT_MARKS)
        marks[n_marks++] = calls;
    if (calls != fail_at)
        return false;
    failed = true;
    errno = ENOMEM;
    return true;
}

/* The common shape of a wrapper that makes something a session tracks: real_call runs
 * unless this call is the one to fail. */
#define TRACKED(type, marked, real_call)                                                           \
    do {                                                                                           \
        if (!atomic_load(&active))                                                                 \
            return real_call;                                                                      \
        pthread_mutex_lock(&lock);                                                                 \
        type r_ = NULL;                                                                            \
        if (!atomic_load(&active)) {                                                               \
            r_ = real_call;                                                                        \
        } else if (!fails(marked) && (r_ = real_call)) {                                           \
            track(r_, calls);                                                                      \
        }                                                                                          \
        pthread_mutex_unlock(&lock);                                                               \
        return r_;                                                                                 \
    } while (0)

void *__wrap_malloc(size_t n)
{
    TRACKED(void *, false, __real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
    TRACKED(void *, false, __real_calloc(n, size));
}

/* realloc, counted; marked: a memory stream's growth. */
static void *reallocate(void *p, size_t n, bool marked)
{
    if (!p)
        TRACKED(void *, marked, __real_malloc(n));
    if (!atomic_load(&active))
        return __real_realloc(p, n);
    pthread_mutex_lock(&lock);
    void *q = NULL;
    if (!atomic_load(&active) || n == 0) {
        q = __real_realloc(p, n);
        if (!q || q != p)
            untrack(p);
    } else if (!fails(marked) && (q = __real_realloc(p, n)) && untrack(p)) {
        /* a block allocated in the session stays tracked under its new address */
        track(q, calls);
    }
    pthread_mutex_unlock(&lock);
    return q;
}

void *__wrap_realloc(void *p, size_t n)
{
    return reallocate(p, n, false);
}

/* A memory stream whose buffer grows through the wrappers, so that a write (or the flush at
 * fclose) fails when its growth does, as libc's open_memstream's would: the stream sets its
 * error and fclose returns EOF. The buffer is the caller's to free after fclose, as libc's. */
typedef struct {
    char **buf;
    size_t *size;
    size_t len, cap;
} memstream;

static ssize_t memstream_write(void *cookie, const char *data, size_t n)
{
    memstream *m = cookie;
    if (m->len + n + 1 > m->cap) {
        size_t cap = 2 * (m->len + n + 1);
        char *grown = reallocate(*m->buf, cap, true);
        if (!grown)
            return -1;
        *m->buf = grown;
        m->cap = cap;
    }
    memcpy(*m->buf + m->len, data, n);
    m->len += n;
    (*m->buf)[m->len] = '\0';
    *m->size = m->len;
    return (ssize_t)n;
}

static int memstream_close(void *cookie)
{
    __real_free(cookie);
    return 0;
}

static FILE *memstream_open(char **buf, size_t *size)
{
    memstream *m = __real_calloc(1, sizeof *m);
    char *first = reallocate(NULL, 1, true);
    static const cookie_io_functions_t io = {.write = memstream_write, .close = memstream_close};
    FILE *f = m && first ? fopencookie(m, "w", io) : NULL;
    if (!f) {
        __wrap_free(first);
        __real_free(m);
        errno = ENOMEM;
        return NULL;
    }
    first[0] = '\0';
    *m = (memstream){.buf = buf, .size = size, .cap = 1};
    *buf = first;
    *size = 0;
    return f;
}

/* Within a session the stream is the one above (its first buffer counted as the allocation
 * of open_memstream); outside, libc's. */
FILE *__wrap_open_memstream(char **buf, size_t *size)
{
    if (!atomic_load(&active))
        return __real_open_memstream(buf, size);
    FILE *f = memstream_open(buf, size);
    if (f) {
        pthread_mutex_lock(&lock);
        track(f, calls);
        pthread_mutex_unlock(&lock);
    }
    return f;
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
    TRACKED(FILE *, true, __real_fopen(path, mode));
}

FILE *__wrap_fdopen(int fd, const char *mode)
{
    TRACKED(FILE *, true, __real_fdopen(fd, mode));
}

DIR *__wrap_opendir(const char *path)
{
    TRACKED(DIR *, true, __real_opendir(path));
}

/* Untracks p if a session holds it; the real release follows. */
static void release(const void *p)
{
    if (!atomic_load(&active))
        return;
    pthread_mutex_lock(&lock);
    untrack(p);
    pthread_mutex_unlock(&lock);
}

void __wrap_free(void *p)
{
    release(p);
    __real_free(p);
}

int __wrap_fclose(FILE *f)
{
    release(f);
    return __real_fclose(f);
}

int __wrap_closedir(DIR *d)
{
    release(d);
    return __real_closedir(d);
}

char *__wrap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = __wrap_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = __wrap_malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}
