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

    /// Welch's two-sample t-test of equal means without assuming equal variances (Welch 1947, with the
    /// Welch–Satterthwaite degrees of freedom): the mean of `b` minus the mean of `a`, and the two-sided p-value.
    /// `nil` when either sample has fewer than two values; a p-value of 1 when both samples are constant and equal,
    /// 0 when both are constant and differ.
    public static func welch(_ a: [Double], _ b: [Double]) -> (difference: Double, p: Double)? {
        guard a.count >= 2, b.count >= 2 else { return nil }
        func moments(_ x: [Double]) -> (mean: Double, varianceOfMean: Double, n: Double) {
            let n = Double(x.count)
            let mean = x.reduce(0, +) / n
            let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
            return (mean, variance / n, n)
        }
        let (ma, va, na) = moments(a)
        let (mb, vb, nb) = moments(b)
        let difference = mb - ma
        let se2 = va + vb
        guard se2 > 0 else { return (difference, difference == 0 ? 1 : 0) }
        let t = difference / se2.squareRoot()
        let df = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1))
        return (difference, min(1, 2 * gsl_cdf_tdist_Q(abs(t), df)))
    }

    /// The quantile of Student's t distribution: t with P(T ≤ t) = p.
    public static func studentTQuantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
        gsl_cdf_tdist_Pinv(p, nu)
    }
}
