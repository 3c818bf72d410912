#ifndef MESHSIM_CGSL_SHIM_H
#define MESHSIM_CGSL_SHIM_H

#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>

/* GSL exposes its generator types as mutable C globals, which Swift 6 rejects as shared mutable state.
   These accessors hand out the (never mutated) type descriptors instead. */
static inline const gsl_rng_type *meshsim_rng_type_mt19937(void) { return gsl_rng_mt19937; }
static inline const gsl_rng_type *meshsim_rng_type_taus2(void) { return gsl_rng_taus2; }

#endif
