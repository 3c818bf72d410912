//===----------------------------------------------------------------------===//
// meshsim — Reports
//===----------------------------------------------------------------------===//

internal import CGSL

/// Summary statistics across replications.
public enum Statistics {
    /// The mean of `values` and the half-width of its 95% confidence interval (Student t with n − 1 degrees of
    /// freedom, from GSL); the half-width is `nil` for fewer than two values.
    public static func meanWithCI95(_ values: [Double]) -> (mean: Double?, halfWidth: Double?) {
        guard !values.isEmpty else { return (nil, nil) }
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        guard values.count >= 2 else { return (mean, nil) }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        return (mean, studentTQuantile(0.975, degreesOfFreedom: n - 1) * (variance / n).squareRoot())
    }

    /// The quantile of Student's t distribution: t with P(T ≤ t) = p.
    public static func studentTQuantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
        gsl_cdf_tdist_Pinv(p, nu)
    }
}
