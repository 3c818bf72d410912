//===----------------------------------------------------------------------===//
// meshsim — Regress
//===----------------------------------------------------------------------===//

import Reports

/// What became of one metric of one variant between the baseline and the current results.
public struct Finding: Sendable, Equatable {
    /// The verdicts, worst first.
    public enum Verdict: String, Sendable, Comparable, CaseIterable {
        /// Worse beyond its tolerance (and, where noise is possible, significantly so): fails the gate.
        case regressed
        /// The variant (or the metric) is in the baseline but not in the current results: fails the gate.
        case missing
        /// Better beyond its tolerance (and significantly so where noise is possible).
        case improved
        /// Beyond the tolerance, but not significantly different from noise.
        case notSignificant = "not significant"
        /// Too few seeds and windows to tell noise from a change (one value a side, live).
        case insufficient = "insufficient data"
        /// Within the tolerance.
        case unchanged
        /// In the current results only.
        case new

        /// Whether the verdict fails the gate.
        public var fails: Bool { self == .regressed || self == .missing }

        public static func < (a: Verdict, b: Verdict) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// How the change was judged.
    public enum Method: Sendable, Equatable {
        /// Deterministic results (simulated, the same seeds): any move beyond the tolerance counts.
        case exact
        /// Welch's t-test on the per-seed values (`n` a side at least), two-sided p-value `p`.
        case seeds(p: Double, n: Int)
        /// Welch's t-test on the per-window values of the time series, two-sided p-value `p`.
        case windows(p: Double, n: Int)
        /// No test could be made.
        case none
    }

    public var scenario: String
    public var variant: String
    public var metric: String
    public var verdict: Verdict
    /// The baseline's value (the mean across seeds), if any.
    public var baseline: Double?
    /// The current value (the mean across seeds), if any.
    public var current: Double?
    /// The tolerance applied.
    public var tolerance: Tolerance?
    public var method: Method
    /// The metric's better direction.
    public var direction: Direction?

    /// The change, current minus baseline.
    public var change: Double? {
        guard let baseline, let current else { return nil }
        return current - baseline
    }
}

/// Compares two result sets metric by metric: the gate of `meshsim regress`.
///
/// Simulated results with the same seeds on both sides are deterministic: a metric whose mean moves beyond its
/// tolerance has changed, with no test. Otherwise (live runs, or other seeds) a move beyond the tolerance counts only
/// when it is also significant: Welch's two-sided t-test at `alpha` on the per-seed values when both sides have at
/// least two seeds, else on the per-window values of the time series (docs/ci.md says why).
public struct Regression: Sendable {
    /// The metrics and their tolerances.
    public var tolerances: [(metric: String, tolerance: Tolerance)]
    /// The significance level of the tests.
    public var alpha = 0.05

    /// Creates a comparison with `tolerances`.
    public init(tolerances: [(metric: String, tolerance: Tolerance)], alpha: Double = 0.05) {
        self.tolerances = tolerances
        self.alpha = alpha
    }

    /// Every finding, in scenario, variant and metric order (the baseline's variants first).
    public func compare(baseline: ResultSet, current: ResultSet) -> [Finding] {
        var findings: [Finding] = []
        for scenario in Set(baseline.scenarios.keys).union(current.scenarios.keys).sorted() {
            let before = baseline.scenarios[scenario] ?? [:]
            let after = current.scenarios[scenario] ?? [:]
            for variant in Set(before.keys).union(after.keys).sorted() {
                for (metric, tolerance) in tolerances {
                    findings.append(
                        judge(
                            scenario: scenario,
                            variant: variant,
                            metric: metric,
                            tolerance: tolerance,
                            before: before[variant],
                            after: after[variant]
                        )
                    )
                }
            }
        }
        return findings
    }

    /// One metric of one variant.
    func judge(
        scenario: String,
        variant: String,
        metric: String,
        tolerance: Tolerance,
        before: VariantResults?,
        after: VariantResults?
    ) -> Finding {
        let direction = RegressMetrics.directions[metric] ?? .lowerIsBetter
        var finding = Finding(
            scenario: scenario,
            variant: variant,
            metric: metric,
            verdict: .unchanged,
            tolerance: tolerance,
            method: .none,
            direction: direction
        )
        let a = before.map { Self.values($0, metric) } ?? []
        let b = after.map { Self.values($0, metric) } ?? []
        finding.baseline = Self.mean(a)
        finding.current = Self.mean(b)
        guard let before, !a.isEmpty else {
            finding.verdict = .new
            return finding
        }
        guard let after, !b.isEmpty, let base = finding.baseline, let now = finding.current else {
            finding.verdict = .missing
            return finding
        }
        let change = now - base
        let worse = direction == .lowerIsBetter ? change > 0 : change < 0
        let beyond = abs(change) > tolerance.allowance(from: base) + 1e-12 * max(1, abs(base))
        if before.mode == "sim" && after.mode == "sim" && Set(before.seeds.keys) == Set(after.seeds.keys) {
            finding.method = .exact
            finding.verdict = !beyond ? .unchanged : (worse ? .regressed : .improved)
            return finding
        }
        if let test = Statistics.welch(a, b) {
            finding.method = .seeds(p: test.p, n: min(a.count, b.count))
        } else {
            let wa = Self.windowValues(before, metric)
            let wb = Self.windowValues(after, metric)
            if let test = Statistics.welch(wa, wb) {
                finding.method = .windows(p: test.p, n: min(wa.count, wb.count))
            }
        }
        guard beyond else { return finding }
        switch finding.method {
        case .seeds(let p, _), .windows(let p, _):
            finding.verdict = p < alpha ? (worse ? .regressed : .improved) : .notSignificant
        case .exact, .none:
            finding.verdict = .insufficient
        }
        return finding
    }

    /// A variant's per-seed values of `metric`, by seed.
    static func values(_ results: VariantResults, _ metric: String) -> [Double] {
        results.seeds.keys.sorted().compactMap { results.seeds[$0]![metric] }
    }

    /// A variant's per-window values of `metric` over all seeds, leaving out each seed's first window (the
    /// warm-up) and windows without the metric (nothing finished in them).
    static func windowValues(_ results: VariantResults, _ metric: String) -> [Double] {
        results.windows.keys.sorted().flatMap { seed in results.windows[seed]!.dropFirst().compactMap { $0[metric] } }
    }

    static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }
}
