/* Accuracy of predictions against measurements (docs/validation.md): the median and 90th
 * percentile of the absolute relative error, and the predicted-against-measured scatter
 * plot (gnuplot), log-log with the diagonal and +-10% lines. */
#include "reports/internal.h"
#include "reports/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

isim_status isim_report_scatter(const char *path, const double *measured, const double *predicted,
                                const int *series, size_t n, const char *const *names, int n_series,
                                const char *title, const char *unit, isim_error *err)
{
    char *body = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&body, &size);
    if (!f)
        return isim__gnuplot_fail(err, "out of memory");
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++)
        if (measured[i] > 0 && predicted[i] > 0) {
            lo = fmin(lo, fmin(measured[i], predicted[i]));
            hi = fmax(hi, fmax(measured[i], predicted[i]));
        }
    if (!(hi > 0)) {
        fclose(f);
        free(body);
        return isim__gnuplot_fail(err, "%s: nothing to plot", path);
    }
    lo /= 1.5;
    hi *= 1.5;
    fputs("set title ", f);
    isim__gp_string(f, title);
    fprintf(f,
            "\nset logscale xy\nset xrange [%g:%g]\nset yrange [%g:%g]\nset size square\n"
            "set grid xtics ytics mxtics mytics lc rgb '#dddddd'\nset key top left box opaque\n"
            "set format x '%%g'\nset format y '%%g'\n",
            lo, hi, lo, hi);
    char axis[80];
    snprintf(axis, sizeof axis, "measured (%s)", unit);
    fputs("set xlabel ", f);
    isim__gp_string(f, axis);
    snprintf(axis, sizeof axis, "predicted (%s)", unit);
    fputs("\nset ylabel ", f);
    isim__gp_string(f, axis);
    fputc('\n', f);
    for (int s = 0; s < n_series; s++) {
        fprintf(f, "$s%d << EOD\n", s);
        for (size_t i = 0; i < n; i++)
            if (series[i] == s && measured[i] > 0 && predicted[i] > 0)
                fprintf(f, "%.6g %.6g\n", measured[i], predicted[i]);
        fputs("EOD\n", f);
    }
    fputs("plot x title 'predicted = measured' lc rgb '#000000' lw 1, "
          "1.1 * x title '+-10%' lc rgb '#999999' dt 2, 0.9 * x notitle lc rgb '#999999' dt 2",
          f);
    for (int s = 0; s < n_series; s++) {
        static const int pt[] = {7, 9, 5, 13, 11, 3}; /* filled circle, triangle, ... */
        fprintf(f, ", $s%d with points pt %d ps 1.2 title ", s, pt[s % 6]);
        isim__gp_string(f, names[s]);
    }
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(body);
        return isim__gnuplot_fail(err, "out of memory");
    }
    isim_status st = isim__gnuplot(path, 760, 720, body, err);
    free(body);
    return st;
}
