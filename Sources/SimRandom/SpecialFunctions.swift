//===----------------------------------------------------------------------===//
// meshsim — SimRandom
//===----------------------------------------------------------------------===//

internal import CGSL

// Small numeric helpers from GSL and libm, used to report distribution means.

func _exp(_ x: Double) -> Double { CGSL.exp(x) }
func _log(_ x: Double) -> Double { CGSL.log(x) }
func _gammaFunction(_ x: Double) -> Double { x > 171 ? .infinity : gsl_sf_gamma(x) }
func _stdNormalPDF(_ x: Double) -> Double { gsl_ran_ugaussian_pdf(x) }
func _stdNormalCDF(_ x: Double) -> Double { gsl_cdf_ugaussian_P(x) }

/// The standard normal quantile z with P(Z ≤ z) = p.
public func standardNormalQuantile(_ p: Double) -> Double { gsl_cdf_ugaussian_Pinv(p) }
