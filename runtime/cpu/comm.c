/* The processes of a run over Open MPI: world rank = stage x tp + tp_rank, a communicator
 * per pipeline stage for the tensor-parallel all-reduces, point-to-point hand-offs
 * between stages. MPI errors are returned, not fatal, so that the program can say which
 * rank failed and why before it ends the run. */
#include "runtime/cpu/internal.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static isim_status mpi_fail(isim_error *err, int code, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", code);
    return isim__rt_fail(err, ISIM_EIO, "MPI %s failed: %s", what, msg);
}

#define CHECK(call, what)                                                                          \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS)                                                                    \
            return mpi_fail(err, rc_, what);                                                       \
    } while (0)

bool isim_rt_under_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL;
}

isim_status isim_rt_mpi_init(int *argc, char ***argv, int *rank, int *size, isim_error *err)
{
    int provided = 0;
    CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "initialisation");
    CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "error handler");
    CHECK(MPI_Comm_rank(MPI_COMM_WORLD, rank), "rank");
    CHECK(MPI_Comm_size(MPI_COMM_WORLD, size), "size");
    return ISIM_OK;
}

void isim_rt_mpi_finalize(void)
{
    int done = 0;
    MPI_Finalized(&done);
    if (!done)
        MPI_Finalize();
}

void isim_rt_mpi_abort(int code)
{
    MPI_Abort(MPI_COMM_WORLD, code);
}

static bool mpi_running(void)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    return up && !down;
}

isim_status isim__rt_comm_open(rt_comm *c, int tp, int pp, isim_error *err)
{
    memset(c, 0, sizeof *c);
    c->tp = tp;
    c->pp = pp;
    c->world_size = 1;
    if (mpi_running()) {
        CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &c->world_rank), "rank");
        CHECK(MPI_Comm_size(MPI_COMM_WORLD, &c->world_size), "size");
    }
    if (c->world_size != tp * pp)
        return isim__rt_fail(
            err, ISIM_EINVAL, "%d process%s for tp %d x pp %d = %d: start it with mpirun -np %d",
            c->world_size, c->world_size == 1 ? "" : "es", tp, pp, tp * pp, tp * pp);
    c->stage = c->world_rank / tp;
    c->tp_rank = c->world_rank % tp;
    if (tp > 1) {
        MPI_Comm *comm = malloc(sizeof *comm);
        if (!comm)
            return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
        int rc = MPI_Comm_split(MPI_COMM_WORLD, c->stage, c->tp_rank, comm);
        if (rc != MPI_SUCCESS) {
            free(comm);
            return mpi_fail(err, rc, "communicator split");
        }
        MPI_Comm_set_errhandler(*comm, MPI_ERRORS_RETURN);
        c->tp_comm = comm;
    }
    return ISIM_OK;
}

void isim__rt_comm_close(rt_comm *c)
{
    if (c->tp_comm) {
        if (mpi_running())
            MPI_Comm_free((MPI_Comm *)c->tp_comm);
        free(c->tp_comm);
        c->tp_comm = NULL;
    }
}

isim_status isim__rt_comm_allreduce(rt_comm *c, float *x, size_t n, isim_error *err)
{
    if (c->tp == 1)
        return ISIM_OK;
    if (n > (size_t)INT32_MAX)
        return isim__rt_fail(err, ISIM_EINVAL, "all-reduce of %zu values is too large", n);
    CHECK(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, *(MPI_Comm *)c->tp_comm),
          "all-reduce");
    return ISIM_OK;
}

isim_status isim__rt_comm_allgather_cols(rt_comm *c, const float *local, size_t rows,
                                         size_t cols_local, float *out, float *scratch,
                                         isim_error *err)
{
    size_t block = rows * cols_local;
    if (c->tp == 1) {
        memcpy(out, local, block * sizeof *out);
        return ISIM_OK;
    }
    if (block > (size_t)INT32_MAX)
        return isim__rt_fail(err, ISIM_EINVAL, "all-gather of %zu values is too large", block);
    CHECK(MPI_Allgather(local, (int)block, MPI_FLOAT, scratch, (int)block, MPI_FLOAT,
                        *(MPI_Comm *)c->tp_comm),
          "all-gather");
    /* scratch (rank, row, col) -> out (row, rank * cols_local + col) */
    for (int r = 0; r < c->tp; r++)
        for (size_t i = 0; i < rows; i++)
            memcpy(out + i * cols_local * (size_t)c->tp + (size_t)r * cols_local,
                   scratch + (size_t)r * block + i * cols_local, cols_local * sizeof *out);
    return ISIM_OK;
}

size_t isim__rt_comm_request_size(void)
{
    return sizeof(MPI_Request);
}

isim_status isim__rt_comm_send_next(rt_comm *c, const float *x, size_t n, int tag, void *request,
                                    isim_error *err)
{
    if (n > (size_t)INT32_MAX)
        return isim__rt_fail(err, ISIM_EINVAL, "hand-off of %zu values is too large", n);
    CHECK(MPI_Isend(x, (int)n, MPI_FLOAT, c->world_rank + c->tp, tag, MPI_COMM_WORLD,
                    (MPI_Request *)request),
          "send to the next stage");
    return ISIM_OK;
}

isim_status isim__rt_comm_recv_prev(rt_comm *c, float *x, size_t n, int tag, isim_error *err)
{
    if (n > (size_t)INT32_MAX)
        return isim__rt_fail(err, ISIM_EINVAL, "hand-off of %zu values is too large", n);
    CHECK(MPI_Recv(x, (int)n, MPI_FLOAT, c->world_rank - c->tp, tag, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE),
          "receive from the previous stage");
    return ISIM_OK;
}

isim_status isim__rt_comm_wait(rt_comm *c, void *requests, int n, isim_error *err)
{
    (void)c;
    if (n > 0)
        CHECK(MPI_Waitall(n, (MPI_Request *)requests, MPI_STATUSES_IGNORE), "wait");
    return ISIM_OK;
}

isim_status isim__rt_comm_bcast(rt_comm *c, void *x, size_t bytes, int root, isim_error *err)
{
    if (c->world_size == 1)
        return ISIM_OK;
    if (bytes > (size_t)INT32_MAX)
        return isim__rt_fail(err, ISIM_EINVAL, "broadcast of %zu bytes is too large", bytes);
    CHECK(MPI_Bcast(x, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
    return ISIM_OK;
}

isim_status isim__rt_comm_sum(rt_comm *c, double *x, isim_error *err)
{
    if (c->world_size == 1)
        return ISIM_OK;
    CHECK(MPI_Allreduce(MPI_IN_PLACE, x, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "sum");
    return ISIM_OK;
}

bool isim__rt_comm_any(rt_comm *c, bool failed)
{
    if (c->world_size == 1)
        return failed;
    int mine = failed ? 1 : 0, any = 1;
    if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD) != MPI_SUCCESS)
        return true;
    return any != 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

isim_status isim_rt_measure_allreduce(const size_t *sizes, int n, int runs, isim_rt_stat *out,
                                      isim_error *err)
{
    if (!mpi_running())
        return isim__rt_fail(err, ISIM_EINVAL, "measuring all-reduce needs mpirun");
    if (runs < 3)
        runs = 3;
    size_t biggest = 0;
    for (int i = 0; i < n; i++)
        biggest = sizes[i] > biggest ? sizes[i] : biggest;
    float *buf = calloc(biggest / sizeof(float) + 1, sizeof(float));
    double *t = malloc((size_t)runs * sizeof *t);
    if (!buf || !t) {
        free(buf);
        free(t);
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    }
    isim_status st = ISIM_OK;
    for (int i = 0; i < n && !st; i++) {
        int count = (int)(sizes[i] / sizeof(float));
        if (count < 1)
            count = 1;
        /* repetitions enough for about a millisecond at the smallest sizes */
        int reps = sizes[i] < 65536 ? 200 : sizes[i] < (1u << 22) ? 20 : 4;
        for (int r = 0; r < runs && !st; r++) {
            int rc = MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            for (int q = 0; q < reps && rc == MPI_SUCCESS; q++)
                rc = MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            t[r] = (MPI_Wtime() - t0) / reps;
            if (rc != MPI_SUCCESS)
                st = mpi_fail(err, rc, "all-reduce");
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        out[i] =
            (isim_rt_stat){.best = t[0], .median = t[runs / 2], .worst = t[runs - 1], .runs = runs};
    }
    free(buf);
    free(t);
    return st;
}
