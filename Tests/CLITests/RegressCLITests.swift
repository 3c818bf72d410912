import Foundation
import Testing

/// `meshsim regress` end to end: the committed baseline, exit codes, report files.
@Suite("meshsim regress")
struct RegressCLITests {
    /// Runs a bundled scenario into `directory/NAME`, as `scripts/baseline` does.
    func simulate(_ name: String, into directory: String, extra: [String] = []) throws {
        let outcome = try CLITests.meshsim(
            ["run", "scenarios/\(name).yaml", "--out", directory + "/" + name, "--quiet"] + extra
        )
        #expect(outcome.status == 0, "\(outcome.stderr)")
    }

    @Test(
        "the committed baseline is what the code gives now: byte for byte, and regress passes",
        arguments: ["mm1", "quickstart", "zones-and-health"]
    )
    func baselineHolds(name: String) throws {
        let directory = CLITests.temporaryDirectory("regress-baseline-\(name)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try simulate(name, into: directory)
        for file in ["summary.csv", "timeseries.csv", "comparison.csv"] {
            let committed = FileManager.default.contents(atPath: CLITests.root + "/results/baseline/\(name)/\(file)")
            let fresh = FileManager.default.contents(atPath: directory + "/\(name)/\(file)")
            #expect(
                committed != nil && committed == fresh,
                "results/baseline/\(name)/\(file) drifted: run scripts/baseline"
            )
        }
        let outcome = try CLITests.meshsim([
            "regress", "--baseline", "results/baseline/\(name)", "--current", directory + "/\(name)",
        ])
        #expect(outcome.status == 0, "\(outcome.stdout)\(outcome.stderr)")
        #expect(outcome.stdout.contains(": ok"))
    }

    @Test("a worse variant fails with exit 1, names the metric, and writes JUnit and Markdown")
    func regressionFails() throws {
        let directory = CLITests.temporaryDirectory("regress-worse")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The M/M/1 queue at a higher arrival rate: every latency rises.
        let base = directory + "/base"
        let worse = directory + "/worse"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: worse, withIntermediateDirectories: true)
        let scenario = try String(contentsOfFile: CLITests.root + "/scenarios/mm1.yaml", encoding: .utf8)
        let rate = try #require(scenario.range(of: #"rate: \d+"#, options: .regularExpression))
        try scenario.replacingCharacters(in: rate, with: "rate: 900").write(
            toFile: directory + "/mm1-busier.yaml",
            atomically: true,
            encoding: .utf8
        )
        try simulate("mm1", into: base, extra: ["--seeds", "3", "--duration", "50s"])
        let run = try CLITests.meshsim([
            "run", directory + "/mm1-busier.yaml", "--out", worse + "/mm1", "--quiet", "--seeds", "3", "--duration",
            "50s",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let outcome = try CLITests.meshsim([
            "regress", "--baseline", base, "--current", worse, "--junit", directory + "/r.xml", "--markdown",
            directory + "/r.md",
        ])
        #expect(outcome.status == 1, "\(outcome.stdout)\(outcome.stderr)")
        #expect(outcome.stdout.contains("regressed"))
        #expect(outcome.stdout.contains("p99_ms"))
        #expect(outcome.stdout.contains("REGRESSION"))
        let xml = try String(contentsOfFile: directory + "/r.xml", encoding: .utf8)
        #expect(xml.contains("<failure"))
        let md = try String(contentsOfFile: directory + "/r.md", encoding: .utf8)
        #expect(md.contains("❌ regressed"))
        // The same results against themselves: no regression.
        let same = try CLITests.meshsim(["regress", "--baseline", base, "--current", base])
        #expect(same.status == 0, "\(same.stdout)")
        // A generous tolerance lets the change through.
        let lenient = try CLITests.meshsim([
            "regress", "--baseline", base, "--current", worse, "--tolerance", "p99_ms=off", "--tolerance",
            "p50_ms=+1000%", "--tolerance", "goodput_rps=50%", "--tolerance", "success_rate=off",
        ])
        #expect(lenient.status == 0, "\(lenient.stdout)")
    }

    @Test(
        "bad flags are usage errors (64); unreadable results are 65",
        arguments: [
            (
                [
                    "regress", "--baseline", "results/baseline", "--current", "results/baseline", "--tolerance",
                    "p99_ms=-5%",
                ], 64, "points the better way"
            ),
            (
                [
                    "regress", "--baseline", "results/baseline", "--current", "results/baseline", "--tolerance",
                    "p98=5%",
                ], 64, "unknown metric 'p98'"
            ),
            (
                ["regress", "--baseline", "results/baseline", "--current", "results/baseline", "--alpha", "2"], 64,
                "--alpha must be in (0, 1)"
            ),
            (
                ["regress", "--baseline", "/nonexistent-meshsim", "--current", "results/baseline"], 65,
                "/nonexistent-meshsim: not a folder"
            ),
            (["regress", "--baseline", "scenarios", "--current", "results/baseline"], 65, "no summary.csv"),
        ]
    )
    func badInput(arguments: [String], status: Int32, message: String) throws {
        let outcome = try CLITests.meshsim(arguments)
        #expect(outcome.status == status, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(message), "\(outcome.stderr)")
    }
}
