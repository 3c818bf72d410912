//===----------------------------------------------------------------------===//
// meshsim — Regress
//===----------------------------------------------------------------------===//

/// The findings of a comparison written for a person (a table), a CI system (JUnit XML) and a pull request
/// (Markdown).
public struct RegressReport: Sendable {
    /// Every finding.
    public var findings: [Finding]

    /// Creates a report of `findings`.
    public init(findings: [Finding]) {
        self.findings = findings
    }

    /// Whether any finding fails the gate.
    public var fails: Bool { findings.contains { $0.verdict.fails } }

    /// The findings worth listing (everything but unchanged), worst first.
    public var notable: [Finding] {
        findings.filter { $0.verdict != .unchanged }.sorted { $0.verdict < $1.verdict }
    }

    /// Counts by verdict, for the summary line.
    public var counts: [Finding.Verdict: Int] {
        var counts: [Finding.Verdict: Int] = [:]
        for finding in findings { counts[finding.verdict, default: 0] += 1 }
        return counts
    }

    /// One line: how many checks, how many worse and better.
    public var summaryLine: String {
        let c = counts
        let variants = Set(findings.map { "\($0.scenario)\u{0}\($0.variant)" }).count
        var parts = [
            "\(findings.count) check\(findings.count == 1 ? "" : "s") over \(variants) variant\(variants == 1 ? "" : "s")"
        ]
        for verdict in Finding.Verdict.allCases where verdict != .unchanged {
            if let n = c[verdict], n > 0 { parts.append("\(n) \(verdict.rawValue)") }
        }
        parts.append("\(c[.unchanged] ?? 0) unchanged")
        return parts.joined(separator: ", ") + (fails ? ": REGRESSION" : ": ok")
    }

    /// The value of a metric as the CSVs write it.
    static func format(_ value: Double?) -> String {
        guard let value else { return "-" }
        if value == value.rounded() && abs(value) < 1e12 { return String(Int(value)) }
        let text = String(format4: value)
        return text
    }

    /// The change, as a share and in the metric's unit.
    static func describeChange(_ finding: Finding) -> String {
        guard let change = finding.change, let base = finding.baseline else { return "-" }
        let sign = change >= 0 ? "+" : ""
        if finding.metric == "success_rate" { return sign + String(format4: change * 100) + "pt" }
        if base != 0 { return sign + String(format4: (change / abs(base) * 10_000).rounded() / 100) + "%" }
        return sign + format(change)
    }

    /// How the verdict was reached.
    static func describeMethod(_ method: Finding.Method) -> String {
        switch method {
        case .exact: return "exact"
        case .seeds(let p, let n): return "Welch seeds n=\(n) " + pValue(p)
        case .windows(let p, let n): return "Welch windows n=\(n) " + pValue(p)
        case .none: return "-"
        }
    }

    /// A p-value with four decimals, or `p<0.0001`.
    static func pValue(_ p: Double) -> String { p < 0.0001 ? "p<0.0001" : "p=" + String(format4: p) }

    /// A fixed-width table of the notable findings, then the summary line.
    public func table() -> String {
        let header = ["verdict", "scenario", "variant", "metric", "baseline", "current", "change", "tolerance", "test"]
        let rows = notable.map { f in
            [
                f.verdict.rawValue, f.scenario, f.variant, f.metric, Self.format(f.baseline), Self.format(f.current),
                Self.describeChange(f), f.tolerance?.description ?? "-", Self.describeMethod(f.method),
            ]
        }
        var text = ""
        if !rows.isEmpty {
            let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max() ?? 0 }
            for row in [header] + rows {
                text +=
                    row.enumerated().map { i, cell in cell.padding(toLength: widths[i]) }.joined(separator: "  ")
                    .trimmingTrailingSpaces() + "\n"
            }
        }
        return text + summaryLine + "\n"
    }

    /// JUnit XML: a test suite per scenario, a test case per variant and metric; a regression or a missing value
    /// is a `<failure>`, a change that is not significant or cannot be judged is noted in `<system-out>`.
    public func junit() -> String {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        let failures = findings.filter { $0.verdict.fails }.count
        xml += "<testsuites name=\"meshsim regress\" tests=\"\(findings.count)\" failures=\"\(failures)\">\n"
        var scenarios: [String] = []
        for f in findings where !scenarios.contains(f.scenario) { scenarios.append(f.scenario) }
        for scenario in scenarios {
            let cases = findings.filter { $0.scenario == scenario }
            let failed = cases.filter { $0.verdict.fails }.count
            xml += "  <testsuite name=\"\(Self.escape(scenario))\" tests=\"\(cases.count)\" failures=\"\(failed)\">\n"
            for f in cases {
                xml +=
                    "    <testcase classname=\"\(Self.escape(scenario + "." + f.variant))\" name=\"\(Self.escape(f.metric))\""
                let message = Self.sentence(f)
                if f.verdict.fails {
                    xml += ">\n      <failure message=\"\(Self.escape(message))\" type=\"\(f.verdict.rawValue)\"/>\n"
                    xml += "    </testcase>\n"
                } else if f.verdict == .unchanged {
                    xml += "/>\n"
                } else {
                    xml += ">\n      <system-out>\(Self.escape(message))</system-out>\n    </testcase>\n"
                }
            }
            xml += "  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
    }

    /// A Markdown summary for a pull request or a GitHub Actions job summary.
    public func markdown() -> String {
        var md = "## meshsim regress: " + (fails ? "regression" : "no regression") + "\n\n"
        md += summaryLine + "\n\n"
        let rows = notable
        if rows.isEmpty {
            return md + "Every metric is within its tolerance.\n"
        }
        md += "| | scenario | variant | metric | baseline | current | change | tolerance | test |\n"
        md += "|---|---|---|---|---|---|---|---|---|\n"
        for f in rows {
            let mark: String
            switch f.verdict {
            case .regressed, .missing: mark = "❌ " + f.verdict.rawValue
            case .improved: mark = "✅ improved"
            default: mark = f.verdict.rawValue
            }
            let cells = [
                mark, f.scenario, f.variant, "`\(f.metric)`", Self.format(f.baseline), Self.format(f.current),
                Self.describeChange(f), f.tolerance?.description ?? "-", Self.describeMethod(f.method),
            ]
            md += "| " + cells.map { $0.replacingOccurrencesOfPipe() }.joined(separator: " | ") + " |\n"
        }
        return md
    }

    /// A sentence for one finding.
    static func sentence(_ f: Finding) -> String {
        switch f.verdict {
        case .missing: return "\(f.metric) is in the baseline (\(format(f.baseline))) but not in the current results"
        case .new: return "\(f.metric) is new: \(format(f.current)) (no baseline)"
        default:
            return
                "\(f.metric) \(format(f.baseline)) → \(format(f.current)) (\(describeChange(f)), tolerance \(f.tolerance?.description ?? "-"), \(describeMethod(f.method))): \(f.verdict.rawValue)"
        }
    }

    /// `text` with XML's special characters escaped (and control characters other than tab and newline dropped).
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value >= 0x20 { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}

extension String {
    /// The value with four decimals at most, trailing zeros dropped (no Foundation formatting).
    init(format4 value: Double) {
        let scaled = (value * 10_000).rounded()
        guard scaled.isFinite, abs(scaled) < 9e15 else {
            self = String(value)
            return
        }
        let whole = Int(scaled)
        let sign = whole < 0 ? "-" : ""
        let magnitude = abs(whole)
        var fraction = String(magnitude % 10_000)
        fraction = String(repeating: "0", count: 4 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        self = sign + String(magnitude / 10_000) + (fraction.isEmpty ? "" : "." + fraction)
    }

    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }

    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }

    func replacingOccurrencesOfPipe() -> String {
        var out = ""
        for c in self { out += c == "|" ? "\\|" : String(c) }
        return out
    }
}
