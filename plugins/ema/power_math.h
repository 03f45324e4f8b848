/* power_math.h: the power-function EMA profile of EDM2 (docs/formulas.md §5) in double precision: sigma_rel <->
 * exponent gamma, the per-step beta, the profile's weight over training time and the closed-form inner
 * product of two profiles. Header-only so post-hoc code and tests share one definition. */
#ifndef EDM2_POWER_MATH_H
#define EDM2_POWER_MATH_H

#include <math.h>

/* sigma_rel = sqrt((g + 1) / ((g + 2)^2 (g + 3))) */
static inline double power_exp_to_std(double g) { return sqrt((g + 1) / ((g + 2) * (g + 2) * (g + 3))); }

/* gamma = the largest real root of g^3 + 7 g^2 + (16 - s^-2) g + (12 - s^-2); Newton's method from
 * above the root (the cubic is convex and increasing there), polished to full double precision. */
static inline double power_std_to_exp(double std) {
    double t = 1.0 / (std * std);
    double g = t > 16 ? sqrt(t) + 8 : 8; /* > every real root */
    for (int it = 0; it < 200; it++) {
        double f = ((g + 7) * g + (16 - t)) * g + (12 - t);
        double df = (3 * g + 14) * g + (16 - t);
        double step = f / df;
        g -= step;
        if (fabs(step) <= 1e-15 * fabs(g)) break;
    }
    return g;
}

/* beta of one step ending at t with dt images: (1 - dt / t)^(gamma + 1). */
static inline double power_beta(double std, double t, double dt) {
    return pow(1.0 - dt / t, power_std_to_exp(std) + 1.0);
}

/* The profile snapshotted at t: w(tau) = (gamma + 1) tau^gamma / t^(gamma + 1) on [0, t]. */
static inline double power_weight(double std, double t, double tau) {
    if (tau < 0 || tau > t || t <= 0) return 0;
    double g = power_exp_to_std(0) > std ? power_std_to_exp(std) : 0;
    return (g + 1) / t * pow(tau / t, g);
}

/* Closed-form inner product of profiles (std_a at t_a) and (std_b at t_b). */
static inline double power_inner(double std_a, double t_a, double std_b, double t_b) {
    double ga = power_std_to_exp(std_a), gb = power_std_to_exp(std_b);
    double r = t_a / t_b, e = t_a < t_b ? gb : -ga;
    return (ga + 1) * (gb + 1) * pow(r, e) / ((ga + gb + 1) * fmax(t_a, t_b));
}

#endif
