/* Internals shared by the files of sim/: the YAML tree, the strict schema reader and the
 * helpers of the step model. Nothing here is part of the public contract. */
#ifndef ISIM_INTERNAL_H
#define ISIM_INTERNAL_H

#include <math.h>

#include "sim/sim.h"

/* Fills err (if not NULL) and returns code: the library's name for isim_error_set. */
#define isim__fail isim_error_set

/* ---- YAML tree (yamldoc.c) ---------------------------------------------------------- */

typedef enum { ISIM__YSCALAR, ISIM__YMAP, ISIM__YSEQ } isim__ykind;

typedef struct isim__ynode {
    isim__ykind kind;
    int line, column;           /* 1-based */
    char *text;                 /* scalar text */
    bool quoted;                /* scalar was quoted: always a string */
    const char *file;           /* where the node was written when not in the document's own file
                                   (an override); NULL otherwise. Borrowed. */
    size_t n;                   /* map entries or sequence items */
    struct isim__ynode **keys;  /* map: key scalars (n) */
    struct isim__ynode **items; /* map: values (n); sequence: items (n) */
} isim__ynode;

/* Parses one YAML document into a tree. Aliases, tags, multiple documents, non-scalar
 * keys and duplicate keys are refused with file:line:col. *root is freed with
 * isim__ynode_free(). */
isim_status isim__yaml_load(const char *path, isim__ynode **root, isim_error *err);
void isim__ynode_free(isim__ynode *n);

/* ---- strict schema reader (schema.c) ---------------------------------------------- */

typedef struct isim__reader {
    const char *file;           /* path used in messages */
    const char *default_source; /* the source of numbers written without one; NULL: they
                                   are refused */
    isim_error *err;
    isim_fact *facts;
    size_t n_facts, cap_facts;
    const isim_override *ov; /* the what-ifs applied to the document */
    size_t n_ov;
} isim__reader;

/* A mapping being read: its key path and the source that covers its numbers. */
typedef struct isim__map {
    isim__reader *r;
    const isim__ynode *node;
    const isim__ynode *key; /* the key naming this mapping; NULL for the root */
    char path[160];         /* "" for the document root */
    const char *source;     /* nearest enclosing non-root source; NULL if none */
} isim__map;

/* Opens the document root; refuses keys outside `allowed` (NULL-terminated). */
isim_status isim__map_root(isim__reader *r, const isim__ynode *root, const char *const *allowed,
                           isim__map *out);
/* Opens parent[key] as a mapping with its own allowed keys (NULL: any). *present (may be NULL)
 * tells whether it was there; a missing required key is an error. */
isim_status isim__map_sub(isim__map *parent, const char *key, const char *const *allowed,
                          bool required, isim__map *out, bool *present);
/* Scalars. A missing optional key leaves *out untouched and *present false. */
isim_status isim__map_number(isim__map *m, const char *key, bool required, double min, double max,
                             double *out, bool *present);
isim_status isim__map_int(isim__map *m, const char *key, bool required, int64_t min, int64_t max,
                          int64_t *out, bool *present);
isim_status isim__map_bool(isim__map *m, const char *key, bool required, bool *out, bool *present);
/* A name: a non-empty string of at most ISIM_MAX_NAME bytes. It stays owned by the tree;
 * copy it if it must outlive it. */
isim_status isim__map_string(isim__map *m, const char *key, bool required, const char **out,
                             bool *present);
/* Text of any length (a description), as isim__map_string otherwise. */
isim_status isim__map_text(isim__map *m, const char *key, bool required, const char **out,
                           bool *present);
/* A list of non-empty strings: *out becomes a new NULL-terminated array (isim_ids_free). */
isim_status isim__map_strings(isim__map *m, const char *key, bool required, char ***out,
                              bool *present);
/* names is NULL-terminated; *out gets the index. */
isim_status isim__map_enum(isim__map *m, const char *key, bool required, const char *const *names,
                           int *out, bool *present);
/* Records a number read outside isim__map_number (key's node n) as a fact with `source`,
 * or (NULL) the mapping's source or the reader's default. */
isim_status isim__map_fact(isim__map *m, const char *key, double value, const char *source,
                           const isim__ynode *n);
/* The node of a key (NULL if absent), for cross-field messages. */
const isim__ynode *isim__map_get(const isim__map *m, const char *key);
/* Error at a key's place: "file:line:col: <message>". */
isim_status isim__map_error(const isim__map *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void isim__facts_free(isim_fact *facts, size_t n);

/* Reads one specification file: parses it and runs `read` over its root, which fills obj.
 * On success *facts (n_facts) receive every number read with its source. */
typedef isim_status (*isim__read_fn)(isim__reader *r, const isim__ynode *root, void *obj);
isim_status isim__spec_read(const char *path, const isim_override *ov, size_t n_ov,
                            isim__read_fn read, void *obj, isim_fact **facts, size_t *n_facts,
                            isim_error *err);
/* Applies overrides to the tree of the document at `file` (override.c). */
isim_status isim__overrides_apply(isim__ynode *root, const char *file, const isim_override *ov,
                                  size_t n, isim_error *err);
/* A plain scalar that reads as a finite decimal number. */
bool isim__ynode_number(const isim__ynode *n, double *out);

/* Fills m->d from the architecture (model.c). */
void isim__model_derive(isim_model *m);
/* Copies the file stem of path into a new string (NULL when out of memory). */
char *isim__file_stem(const char *path);

/* ---- helpers of the step model ----------------------------------------------------- */

/* max and min for the hot paths: libm's fmax/fmin honour NaN rules that cost a call, and
 * the step model never produces a NaN from valid specifications. */
static inline double isim__max(double a, double b)
{
    return a > b ? a : b;
}
static inline double isim__min(double a, double b)
{
    return a < b ? a : b;
}

/* A collective as a function of a scale x (its bytes are bytes_per_x x): for each protocol
 * p, latency lat[p] and bandwidth time slope[p] x; n = 0 for a single rank. */
typedef struct isim__coll_line {
    int n;
    double lat[3], slope[3];
} isim__coll_line;

void isim__coll_line_make(const isim_hw *hw, isim_fidelity f, isim_coll kind, double ranks,
                          double nodes, double bytes_per_x, isim__coll_line *out);

/* The fastest protocol at scale x: returns latency + bandwidth and sets both parts. */
static inline double isim__coll_line_eval(const isim__coll_line *l, double x, double *lat_s,
                                          double *bw_s)
{
    double best = l->n ? INFINITY : 0, bl = 0, bb = 0;
    for (int i = 0; i < l->n; i++) {
        double bw = l->slope[i] * x, t = l->lat[i] + bw;
        if (t < best) {
            best = t;
            bl = l->lat[i];
            bb = bw;
        }
    }
    *lat_s = bl;
    *bw_s = bb;
    return best;
}

/* The lower envelope of a line's protocols over x >= 0: protocol seg[i] is fastest from
 * x[i] on (x[0] = 0). Evaluating it costs one or two comparisons. */
typedef struct isim__coll_env {
    int n;
    double x[3], lat[3], slope[3];
} isim__coll_env;

void isim__coll_env_make(const isim__coll_line *l, isim__coll_env *out);

static inline double isim__coll_env_eval(const isim__coll_env *e, double x)
{
    int i = e->n - 1;
    while (i > 0 && x < e->x[i])
        i--;
    return e->n ? e->lat[i] + e->slope[i] * x : 0;
}

/* Arithmetic rate used for matmuls whose weights are stored in `weights` (deploy). */
isim_dtype isim__deploy_compute_dtype(const isim_hw *hw, isim_dtype weights);
/* 16-bit rate of the device: bf16, else fp16, else fp32. */
double isim__rate16(const isim_hw *hw);

void isim__terms_finish(isim_terms *t);
void isim__terms_add(isim_terms *acc, const isim_terms *x, double scale);

isim_status isim__paper_predict(const isim_model *m, const isim_hw *hw, const isim_query *q,
                                isim_result *res, isim_error *err);
isim_status isim__deploy_predict(const isim_model *m, const isim_hw *hw, const isim_query *q,
                                 isim_result *res, isim_error *err);
/* Makes speculative step `gamma` (one target pass, gamma draft passes, `tokens` expected
 * tokens) the result's decode: per-token terms are the passes' terms over tokens. */
void isim__spec_record(isim_result *res, int gamma, double tokens, const isim_terms *target,
                       const isim_terms *draft);
/* Price, throughput and energy of a result whose tpot/ttft and terms are set. */
void isim__result_economics(const isim_hw *hw, const isim_query *q, double prefill_device_s,
                            isim_result *res);

#endif
