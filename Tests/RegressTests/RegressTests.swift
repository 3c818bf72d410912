import Foundation
import Regress
import Testing

/// Writes result folders for the tests: `summary.csv` rows of (variant, seed, metrics) and optional windows.
struct ResultsFolder {
    let path: String

    init(_ name: String = "r") throws {
        path = NSTemporaryDirectory() + "meshsim-regress-\(getpid())-\(UUID().uuidString)/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A summary with the columns `scenario,variant,seed,mode,success_rate,goodput_rps,p50_ms,p99_ms`.
    func summary(
        mode: String = "sim",
        _ rows: [(variant: String, seed: Int, success: Double, p99: Double)],
        scenario: String = "s"
    ) throws {
        var text = "scenario,variant,seed,mode,success_rate,goodput_rps,p50_ms,p99_ms,retry_amplification\n"
        for r in rows {
            text += "\(scenario),\(r.variant),\(r.seed),\(mode),\(r.success),100.000,1.0000,\(r.p99),\n"
        }
        try text.write(toFile: path + "/summary.csv", atomically: true, encoding: .utf8)
    }

    /// A time series of per-window p99 values for one variant and seed.
    func windows(variant: String, seed: Int = 1, p99: [Double], scenario: String = "s") throws {
        var text = "scenario,variant,seed,mode,t_s,success_rate,p99_ms\n"
        for (i, value) in p99.enumerated() {
            text += "\(scenario),\(variant),\(seed),live,\(i).000,1.000000,\(value)\n"
        }
        try text.write(toFile: path + "/timeseries.csv", atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
}

func compare(_ a: ResultsFolder, _ b: ResultsFolder, _ overrides: [String] = []) throws -> RegressReport {
    let tolerances = try RegressMetrics.resolve(file: nil, overrides: overrides)
    let findings = Regression(tolerances: tolerances).compare(
        baseline: try ResultSet.load(a.path),
        current: try ResultSet.load(b.path)
    )
    return RegressReport(findings: findings)
}

func verdict(_ report: RegressReport, _ variant: String, _ metric: String) -> Finding.Verdict? {
    report.findings.first { $0.variant == variant && $0.metric == metric }?.verdict
}

@Suite("Tolerances")
struct ToleranceTests {
    @Test("shares, amounts and points, with a sign that must point the worse way")
    func parse() throws {
        #expect(try Tolerance.parse("+5%", metric: "p99_ms", direction: .lowerIsBetter).kind == .relative(0.05))
        #expect(try Tolerance.parse("5%", metric: "p99_ms", direction: .lowerIsBetter).kind == .relative(0.05))
        #expect(try Tolerance.parse("0.5", metric: "p99_ms", direction: .lowerIsBetter).kind == .absolute(0.5))
        #expect(try Tolerance.parse("-0.1pt", metric: "success_rate", direction: .higherIsBetter).kind == .points(0.1))
        #expect(Tolerance(kind: .points(0.1)).allowance(from: 0.99) == 0.001)
        #expect(Tolerance(kind: .relative(0.05)).allowance(from: 20) == 1)
        #expect(throws: ToleranceError.self) { try Tolerance.parse("-5%", metric: "p99_ms", direction: .lowerIsBetter) }
        #expect(throws: ToleranceError.self) {
            try Tolerance.parse("+0.1pt", metric: "success_rate", direction: .higherIsBetter)
        }
        for bad in ["", "fast", "5%%", "-", "nan", "-1e400%"] {
            #expect(throws: ToleranceError.self) {
                try Tolerance.parse(bad, metric: "p99_ms", direction: .lowerIsBetter)
            }
        }
    }

    @Test("defaults, then the file, then flags; off drops a metric; an unknown metric is refused")
    func resolve() throws {
        let defaults = try RegressMetrics.resolve(file: nil, overrides: [])
        #expect(defaults.map(\.metric) == ["success_rate", "goodput_rps", "p50_ms", "p99_ms"])
        let file = NSTemporaryDirectory() + "meshsim-tolerances-\(getpid()).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "p99_ms: +10%\ngoodput_rps: off\nmax_ms: 2\n".write(toFile: file, atomically: true, encoding: .utf8)
        let chosen = try RegressMetrics.resolve(file: file, overrides: ["p99_ms=1"])
        #expect(chosen.map(\.metric) == ["success_rate", "p50_ms", "p99_ms", "max_ms"])
        #expect(chosen.first { $0.metric == "p99_ms" }?.tolerance.kind == .absolute(1))
        #expect(throws: ToleranceError.self) { try RegressMetrics.resolve(file: nil, overrides: ["p98_ms=5%"]) }
        #expect(throws: ToleranceError.self) { try RegressMetrics.resolve(file: nil, overrides: ["p99_ms"]) }
        try "p99_ms: [1]\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: ToleranceError.self) { try RegressMetrics.resolve(file: file, overrides: []) }
    }
}

@Suite("Regression gate")
struct RegressionTests {
    @Test("simulated with the same seeds: any move beyond the tolerance counts, either way")
    func exact() throws {
        let a = try ResultsFolder()
        let b = try ResultsFolder()
        defer { a.remove(); b.remove() }
        try a.summary([("rr", 1, 0.99, 10), ("rr", 2, 0.99, 10), ("ewma", 1, 0.99, 10), ("ewma", 2, 0.99, 10)])
        // rr: p99 +6% (beyond 5%) and success −0.2pt; ewma: p99 −10% and +4% on a second look.
        try b.summary([("rr", 1, 0.988, 10.6), ("rr", 2, 0.988, 10.6), ("ewma", 1, 0.99, 9), ("ewma", 2, 0.99, 9)])
        let report = try compare(a, b)
        #expect(verdict(report, "rr", "p99_ms") == .regressed)
        #expect(verdict(report, "rr", "success_rate") == .regressed)
        #expect(verdict(report, "ewma", "p99_ms") == .improved)
        #expect(verdict(report, "ewma", "p50_ms") == .unchanged)
        #expect(report.fails)
        #expect(report.findings.allSatisfy { $0.method == .exact })
        // Within the tolerance: +4%.
        try b.summary([("rr", 1, 0.99, 10.4), ("rr", 2, 0.99, 10.4), ("ewma", 1, 0.99, 10), ("ewma", 2, 0.99, 10)])
        let within = try compare(a, b)
        #expect(!within.fails)
        #expect(verdict(within, "rr", "p99_ms") == .unchanged)
        // A tighter tolerance catches it.
        #expect(verdict(try compare(a, b, ["p99_ms=+1%"]), "rr", "p99_ms") == .regressed)
    }

    @Test("live runs: a move beyond the tolerance counts only when Welch's test on the seeds finds it significant")
    func seeds() throws {
        let a = try ResultsFolder()
        let b = try ResultsFolder()
        defer { a.remove(); b.remove() }
        let noisy: [Double] = [9, 11, 8, 12, 10]
        try a.summary(mode: "live", noisy.enumerated().map { ("v", $0.offset + 1, 1.0, $0.element) })
        // +8% on average, well within the noise.
        try b.summary(
            mode: "live",
            [9.8, 11.9, 8.6, 12.9, 10.8].enumerated().map { ("v", $0.offset + 1, 1.0, $0.element) }
        )
        let report = try compare(a, b)
        #expect(verdict(report, "v", "p99_ms") == .notSignificant)
        #expect(!report.fails)
        if case .seeds(let p, let n)? = report.findings.first(where: { $0.metric == "p99_ms" })?.method {
            #expect(p > 0.05 && n == 5)
        } else {
            Issue.record("expected a test on the seeds")
        }
        // +50%, beyond the noise.
        try b.summary(mode: "live", noisy.enumerated().map { ("v", $0.offset + 1, 1.0, $0.element * 1.5) })
        #expect(verdict(try compare(a, b), "v", "p99_ms") == .regressed)
    }

    @Test("one live run a side: the per-window values are tested; a single value a side cannot be judged")
    func windows() throws {
        let a = try ResultsFolder()
        let b = try ResultsFolder()
        defer { a.remove(); b.remove() }
        try a.summary(mode: "live", [("v", 1, 1.0, 10)])
        try b.summary(mode: "live", [("v", 1, 1.0, 13)])
        #expect(verdict(try compare(a, b), "v", "p99_ms") == .insufficient)
        let base = (0..<30).map { 10 + Double($0 % 5) * 0.2 }
        try a.windows(variant: "v", p99: [50] + base)
        try b.windows(variant: "v", p99: [50] + base.map { $0 * 1.3 })
        let report = try compare(a, b)
        #expect(verdict(report, "v", "p99_ms") == .regressed)
        if case .windows(_, let n)? = report.findings.first(where: { $0.metric == "p99_ms" })?.method {
            #expect(n == 30)  // the first window (warm-up) is left out
        } else {
            Issue.record("expected a test on the windows")
        }
    }

    @Test("a variant missing from the current results fails; a new one is reported only")
    func missingAndNew() throws {
        let a = try ResultsFolder()
        let b = try ResultsFolder()
        defer { a.remove(); b.remove() }
        try a.summary([("old", 1, 1, 10), ("kept", 1, 1, 10)])
        try b.summary([("kept", 1, 1, 10), ("fresh", 1, 1, 10)])
        let report = try compare(a, b)
        #expect(verdict(report, "old", "p99_ms") == .missing)
        #expect(verdict(report, "fresh", "p99_ms") == .new)
        #expect(report.fails)
    }

    @Test("JUnit XML has a test case per variant and metric and a failure per regression; Markdown lists them")
    func outputs() throws {
        let a = try ResultsFolder()
        let b = try ResultsFolder()
        defer { a.remove(); b.remove() }
        try a.summary([("a<b", 1, 1, 10)])
        try b.summary([("a<b", 1, 1, 20)])
        let report = try compare(a, b)
        let xml = report.junit()
        #expect(xml.contains(#"<testsuites name="meshsim regress" tests="4" failures="1">"#))
        #expect(xml.contains(#"<testcase classname="s.a&lt;b" name="p99_ms">"#))
        #expect(xml.contains(#"type="regressed""#))
        #expect(xml.components(separatedBy: "<testcase").count - 1 == 4)
        let md = report.markdown()
        #expect(md.contains("## meshsim regress: regression"))
        #expect(md.contains("| ❌ regressed | s | a<b | `p99_ms` | 10 | 20 | +100% | 5% | exact |"))
        #expect(report.table().contains("regressed  s         a<b      p99_ms  10        20       +100%"))
    }

    @Test("a folder of scenario folders is read whole; malformed files name the file and line")
    func input() throws {
        let root = NSTemporaryDirectory() + "meshsim-regress-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for name in ["one", "two"] {
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
            try "scenario,variant,seed,mode,p99_ms\n\(name),v,1,sim,5\n".write(
                toFile: root + "/\(name)/summary.csv",
                atomically: true,
                encoding: .utf8
            )
        }
        let set = try ResultSet.load(root)
        #expect(set.scenarios.keys.sorted() == ["one", "two"])
        try "scenario,variant,seed,mode,p99_ms\ntwo,v,1,sim,fast\n".write(
            toFile: root + "/two/summary.csv",
            atomically: true,
            encoding: .utf8
        )
        #expect(
            throws: RegressInputError(
                path: root + "/two/summary.csv",
                line: 2,
                message: "p99_ms: 'fast' is not a number"
            )
        ) {
            try ResultSet.load(root)
        }
        try "scenario,variant,seed\n\"x,1\n".write(toFile: root + "/two/summary.csv", atomically: true, encoding: .utf8)
        #expect(throws: RegressInputError.self) { try ResultSet.load(root) }
        try "scenario,variant,seed,p99_ms\nx,v,1\n".write(
            toFile: root + "/two/summary.csv",
            atomically: true,
            encoding: .utf8
        )
        #expect(
            throws: RegressInputError(path: root + "/two/summary.csv", line: 2, message: "3 cells; the header has 4")
        ) {
            try ResultSet.load(root)
        }
        #expect(throws: RegressInputError.self) { try ResultSet.load(root + "/nowhere") }
        // Quoted names with commas and quotes, as the writers quote them.
        try "scenario,variant,seed,mode,p99_ms\n\"a,b\",\"say \"\"hi\"\"\",1,sim,5\n".write(
            toFile: root + "/two/summary.csv",
            atomically: true,
            encoding: .utf8
        )
        #expect(try ResultSet.load(root).scenarios["a,b"]?["say \"hi\""] != nil)
    }
}
