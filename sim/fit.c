/* Least-squares fits for calibration (docs/validation.md), with GSL: a straight line
 * (gsl_fit_linear), and a general nonlinear fit of positive parameters (Levenberg-Marquardt
 * with geodesic acceleration, gsl_multifit_nlinear, over the parameters' logarithms so that
 * they stay positive and their scales do not matter). */
#include "sim/internal.h"

#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* GSL's default error handler aborts; library code never aborts, so it is turned off once
 * for the process (GSL's handler is global: switching it per call would race between the
 * threads that fit in parallel) and every GSL status is checked instead. */
static pthread_once_t gsl_quiet_once = PTHREAD_ONCE_INIT;
static void gsl_quiet_init(void)
{
    gsl_set_error_handler_off();
}
static void gsl_quiet(void)
{
    pthread_once(&gsl_quiet_once, gsl_quiet_init);
}

isim_status isim_fit_line(const double *x, const double *y, size_t n, double *intercept,
                          double *slope, isim_error *err)
{
    if (n < 2)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "a line needs two points, got %zu", n);
    double c00, c01, c11, sumsq;
    gsl_quiet();
    int rc = gsl_fit_linear(x, 1, y, 1, n, intercept, slope, &c00, &c01, &c11, &sumsq);
    if (rc != GSL_SUCCESS)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "line fit failed: %s", gsl_strerror(rc));
    return ISIM_OK;
}

typedef struct {
    isim_fit_residuals fn;
    void *ctx;
    size_t n_params;
    double *x; /* scratch: the parameters themselves */
    double *r; /* scratch: the residuals */
} nls_ctx;

static int residuals(const gsl_vector *u, void *p, gsl_vector *f)
{
    nls_ctx *c = p;
    for (size_t i = 0; i < c->n_params; i++)
        c->x[i] = exp(gsl_vector_get(u, i));
    /* f may be a strided view (GSL's finite-difference Jacobian writes into its columns) */
    c->fn(c->x, c->r, c->ctx);
    for (size_t i = 0; i < f->size; i++) {
        if (!isfinite(c->r[i]))
            return GSL_EDOM;
        gsl_vector_set(f, i, c->r[i]);
    }
    return GSL_SUCCESS;
}

isim_status isim_fit_positive(size_t n_params, double *params, size_t n_residuals,
                              isim_fit_residuals fn, void *ctx, double *rms, isim_error *err)
{
    if (n_residuals < n_params)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "%zu residuals cannot determine %zu parameters", n_residuals, n_params);
    for (size_t i = 0; i < n_params; i++)
        if (!(params[i] > 0))
            return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                              "parameter %zu starts at %g, not positive", i, params[i]);
    gsl_quiet();
    nls_ctx c = {fn, ctx, n_params, malloc(n_params * sizeof(double)),
                 malloc(n_residuals * sizeof(double))};
    gsl_vector *u = gsl_vector_alloc(n_params);
    gsl_multifit_nlinear_parameters fp = gsl_multifit_nlinear_default_parameters();
    fp.trs = gsl_multifit_nlinear_trs_lmaccel;
    gsl_multifit_nlinear_workspace *w =
        c.x && c.r && u
            ? gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &fp, n_residuals, n_params)
            : NULL;
    if (!w) {
        free(c.x);
        free(c.r);
        if (u)
            gsl_vector_free(u);
        return isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    }
    for (size_t i = 0; i < n_params; i++)
        gsl_vector_set(u, i, log(params[i]));
    gsl_multifit_nlinear_fdf fdf = {
        .f = residuals, .df = NULL, .fvv = NULL, .n = n_residuals, .p = n_params, .params = &c};
    isim_status st = ISIM_OK;
    int rc = gsl_multifit_nlinear_init(u, &fdf, w), info = 0;
    if (rc == GSL_SUCCESS)
        rc = gsl_multifit_nlinear_driver(200, 1e-10, 1e-10, 1e-12, NULL, NULL, &info, w);
    if (rc != GSL_SUCCESS && rc != GSL_EMAXITER) {
        st = isim__fail(err, ISIM_EINVAL, "", 0, 0, "fit failed: %s", gsl_strerror(rc));
    } else {
        gsl_vector *best = gsl_multifit_nlinear_position(w);
        for (size_t i = 0; i < n_params; i++)
            params[i] = exp(gsl_vector_get(best, i));
        if (rms) {
            gsl_vector *f = gsl_multifit_nlinear_residual(w);
            double ss;
            gsl_blas_ddot(f, f, &ss);
            *rms = sqrt(ss / (double)n_residuals);
        }
    }
    gsl_multifit_nlinear_free(w);
    gsl_vector_free(u);
    free(c.x);
    free(c.r);
    return st;
}
