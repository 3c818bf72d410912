import Foundation
import Synchronization
import Testing

/// End-to-end runs of the built `meshsim` binary: exit codes, messages and files.
@Suite("meshsim command line")
struct CLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The `meshsim` binary beside the test bundle.
    static var binary: String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("meshsim").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return root + "/.build/debug/meshsim"
    }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func meshsim(_ arguments: [String], in directory: String = root) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Standard error is read on its own thread: a child that fills one pipe while we wait on the other would
        // block for ever.
        let stderrData = Mutex(Data())
        let stderrRead = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            stderrData.withLock { $0 = data }
            stderrRead.signal()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        stderrRead.wait()
        let stderr = stderrData.withLock { $0 }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus,
            stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self)
        )
    }

    static func temporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "meshsim-cli-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("the binary exists")
    func binaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "no meshsim binary at \(Self.binary)")
    }

    @Test("--help documents the exit codes")
    func help() throws {
        let result = try Self.meshsim(["--help"])
        #expect(result.status == 0)
        for code in ["64", "65", "70"] { #expect(result.stdout.contains(code)) }
        let runHelp = try Self.meshsim(["run", "--help"])
        #expect(runHelp.stdout.contains("--jobs") && runHelp.stdout.contains("--seeds"))
    }

    @Test(
        "bad flags exit 64",
        arguments: [
            ["run", "--seeds", "0"], ["run", "--duration", "5"], ["run", "--jobs", "0"], ["run", "--bogus"],
            ["validate"], ["load"], ["load", "https://127.0.0.1/"], ["load", "http://127.0.0.1:1/", "--rate", "-5"],
            ["load", "http://127.0.0.1:1/", "--arrival", "bursty"], ["load", "http://127.0.0.1:1/", "--warmup", "20s"],
            ["load", "http://127.0.0.1:1/", "--schedule", "0s:10,0s:20"], ["serve", "--service-time", "gauss:1"],
            ["serve", "--replicas", "0"], ["live", "scenarios/mm1.yaml", "--proxy", "envoy"],
            ["run", "--duration", "100000h"], ["run", "--duration", "0s"], ["run", "--max-memory", "5"],
            ["run", "--max-memory", "1KiB"], ["run", "--max-memory", "-3GiB"], ["run", "--seeds", "-5"],
        ]
    )
    func usage(arguments: [String]) throws {
        let result = try Self.meshsim(arguments)
        #expect(result.status == 64, "\(arguments): \(result.stderr)")
        #expect(!result.stderr.isEmpty)
    }

    @Test("serve and load through the binary: a live run writes the simulator's columns with mode = live")
    func serveAndLoad() throws {
        let directory = NSTemporaryDirectory() + "meshsim-cli-load-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: Self.binary)
        server.arguments = [
            "serve", "--replicas", "1", "--port", "20461", "--service-time", "constant:2ms", "--duration", "20s",
        ]
        server.standardOutput = Pipe()
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        Thread.sleep(forTimeInterval: 0.5)
        let result = try Self.meshsim([
            "load", "http://127.0.0.1:20461/", "--rate", "100", "--duration", "2s", "--warmup", "500ms", "--out",
            directory,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("t=0s") && result.stdout.contains("150 requests"), "\(result.stdout)")
        let summary = try String(contentsOfFile: directory + "/summary.csv", encoding: .utf8)
        let lines = summary.split(separator: "\n")
        #expect(
            lines.count == 2 && lines[1].hasPrefix("load,direct,1,live,150,150,0,0,0,1.000000,100.000,"),
            "\(summary)"
        )
        for file in ["timeseries.csv", "run.json", "latency.hgrm", "service.hgrm"] {
            #expect(FileManager.default.fileExists(atPath: directory + "/" + file), "\(file)")
        }
        let hgrm = try String(contentsOfFile: directory + "/latency.hgrm", encoding: .utf8)
        #expect(hgrm.contains("Value") && hgrm.contains("Percentile") && hgrm.contains("#[Mean"))
        // Nothing listens on port 1: refused, counted, and the run still ends normally.
        let refused = try Self.meshsim([
            "load", "http://127.0.0.1:1/", "--rate", "50", "--duration", "1s", "--connections", "1", "--out",
            directory + "/refused", "--quiet",
        ])
        #expect(refused.status == 0)
        #expect(refused.stdout.contains("refused 50"), "\(refused.stdout)")
        #expect(refused.stderr.contains("warning: opened at most 0 of the 1 connections"), "\(refused.stderr)")
        #expect(refused.stderr.contains("warning: sent 0 of 50 planned requests (100.0% short)"), "\(refused.stderr)")
    }

    @Test("a bad scenario exits 65 with file, line, column and key path")
    func badScenario() throws {
        let directory = Self.temporaryDirectory("bad")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/bad.yaml"
        try """
        duration: 10s
        services:
          api:
            service_time: "constant:1ms"
            wrokers: 3
        clients:
          users: {target: api, rate: 10, timeout: 5}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        for command in ["validate", "run"] {
            let result = try Self.meshsim([command, file, "--quiet"].filter { command == "run" || $0 != "--quiet" })
            #expect(result.status == 65)
            #expect(
                result.stderr.contains("\(file):5:5: error: services.api.wrokers: unknown key 'wrokers'"),
                "\(result.stderr)"
            )
            #expect(result.stderr.contains("did you mean 'workers'?"))
            #expect(result.stderr.contains("\(file):7:"))
            #expect(result.stderr.contains("clients.users.timeout"))
            #expect(result.stderr.contains("2 problems found"))
        }
        let missing = try Self.meshsim(["validate", directory + "/nope.yaml"])
        #expect(missing.status == 65)
        #expect(missing.stderr.contains("nope.yaml"))
        let variant = try Self.meshsim(["run", "scenarios/quickstart.yaml", "--variant", "randon", "--quiet"])
        #expect(variant.status == 65)
        #expect(variant.stderr.contains("did you mean 'random'?"))
    }

    @Test("a zero-delay loop exits 65 instead of running forever")
    func stall() throws {
        let directory = Self.temporaryDirectory("stall")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        duration: 1s
        services: {api: {service_time: "constant:0ms"}}
        clients: {users: {target: api, users: 2, think_time: "constant:0ms"}}
        """.write(toFile: directory + "/zeno.yaml", atomically: true, encoding: .utf8)
        let result = try Self.meshsim(["run", directory + "/zeno.yaml", "--out", directory + "/out", "--quiet"])
        #expect(result.status == 65)
        #expect(result.stderr.contains("stopped advancing"))
    }

    @Test("validate accepts every bundled scenario")
    func validate() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.root + "/scenarios").filter {
            $0.hasSuffix(".yaml")
        }
        #expect(names.count >= 8)
        for name in names.sorted() {
            let result = try Self.meshsim(["validate", "scenarios/\(name)"])
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(result.stdout.contains("ok"))
        }
    }

    @Test("run with no scenario runs the quickstart comparison and writes the four reports")
    func runDefault() throws {
        let directory = Self.temporaryDirectory("run")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try Self.meshsim([
            "run", "--duration", "4s", "--seeds", "2", "--out", directory + "/a", "--jobs", "2",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("round_robin") && result.stdout.contains("rank"))
        for file in ["summary.csv", "timeseries.csv", "comparison.csv", "run.json"] {
            #expect(FileManager.default.fileExists(atPath: directory + "/a/" + file))
        }
        let summary = try String(contentsOfFile: directory + "/a/summary.csv", encoding: .utf8)
        #expect(
            summary.hasPrefix(
                "scenario,variant,seed,mode,requests,ok,failed,timed_out,rejected,success_rate,offered_rps,goodput_rps,"
                    + "mean_ms,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,attempts_per_request"
            )
        )
        let timeseries = try String(contentsOfFile: directory + "/a/timeseries.csv", encoding: .utf8)
        #expect(timeseries.hasPrefix("scenario,variant,seed,mode,t_s,requests,"))
        #expect(summary.split(separator: "\n")[1].contains(",sim,"))
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: directory + "/a/run.json"))
        )
        let run = try #require(json as? [String: Any])
        #expect(run["scenario"] as? String == "quickstart")
        #expect((run["scenario_sha256"] as? String)?.count == 64)
        #expect((run["events"] as? Int ?? 0) > 0)

        // The same run with one job writes byte-identical CSVs.
        let again = try Self.meshsim([
            "run", "scenarios/quickstart.yaml", "--duration", "4s", "--seeds", "2", "--out", directory + "/b", "--jobs",
            "1", "--quiet",
        ])
        #expect(again.status == 0)
        #expect(again.stdout.isEmpty)
        for file in ["summary.csv", "timeseries.csv", "comparison.csv"] {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: directory + "/a/" + file))
                    == Data(contentsOf: URL(fileURLWithPath: directory + "/b/" + file))
            )
        }
    }

    @Test("a queue that runs away stops at --max-memory with exit 66, the service, the time and the fix")
    func memoryBudget() throws {
        let directory = Self.temporaryDirectory("memory")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/flood.yaml"
        try """
        duration: 60s
        services:
          api: {service_time: "constant:1ms", workers: 1}
        clients:
          users: {target: api, rate: 100000000}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Self.meshsim(["run", file, "--max-memory", "64MiB", "--out", directory + "/out", "--quiet"])
        #expect(result.status == 66, "\(result.stderr)")
        #expect(result.stderr.contains("service 'api'"))
        #expect(result.stderr.contains("simulated time"))
        #expect(result.stderr.contains("queue: 1000"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/out/summary.csv"))
    }

    @Test("validate refuses a billion laughs, a device and a latin-1 file with exit 65 and a location")
    func hostileFiles() throws {
        let directory = Self.temporaryDirectory("hostile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var lines = [#"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]"#]
        for (name, previous) in zip(["b", "c", "d", "e", "f", "g", "h"], ["a", "b", "c", "d", "e", "f", "g"]) {
            lines.append(
                "\(name): &\(name) [" + Array(repeating: "*" + previous, count: 9).joined(separator: ",") + "]"
            )
        }
        try (lines.joined(separator: "\n") + "\n").write(
            toFile: directory + "/lol.yaml",
            atomically: true,
            encoding: .utf8
        )
        try Data([0x64, 0x3A, 0x20, 0xE9, 0x0A]).write(to: URL(fileURLWithPath: directory + "/latin1.yaml"))
        for (file, words) in [
            (directory + "/lol.yaml", "lol.yaml:6:"), ("/dev/zero", "device"),
            (directory + "/latin1.yaml", "latin1.yaml:1:4"),
        ] {
            let result = try Self.meshsim(["validate", file])
            #expect(result.status == 65, "\(file): \(result.stderr)")
            #expect(result.stderr.contains(words), "\(result.stderr)")
        }
    }
}
