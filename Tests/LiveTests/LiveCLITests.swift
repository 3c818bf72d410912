import Foundation
import Live
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs of the built `meshsim` binary's live commands: flag validation, exit codes and messages.
enum LiveCLI {
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

    /// Runs `meshsim arguments`, killing it after `limit` seconds; SIGINT is sent once the file `interruptWhen`
    /// exists.
    static func run(_ arguments: [String], limit: Double = 30, interruptWhen: String? = nil) throws -> Outcome {
        let directory = NSTemporaryDirectory() + "meshsim-live-cli-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outPath = directory + "/stdout"
        let errPath = directory + "/stderr"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        let deadline = Date().addingTimeInterval(limit)
        var interrupted = false
        while process.isRunning && Date() < deadline {
            if let path = interruptWhen, !interrupted, FileManager.default.fileExists(atPath: path) {
                interrupted = true
                kill(process.processIdentifier, SIGINT)
            }
            usleep(20_000)
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            Issue.record("meshsim \(arguments) did not finish within \(limit) s")
        }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        )
    }

    /// A loopback port that was free a moment ago.
    static func freePort() async throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        try await group.shutdownGracefully()
        return port
    }

    /// A first backend port whose three ports (the small scenario's replicas) avoid `other`.
    static func backendPort(avoiding other: Int) async throws -> Int {
        var port = try await freePort()
        while (port...port + 2).contains(other) || port > 65533 { port = try await freePort() }
        return port
    }

    /// Writes `text` to a new temporary file and returns its path.
    static func file(_ text: String, name: String) throws -> String {
        let path = NSTemporaryDirectory() + "meshsim-live-cli-\(getpid())-\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite("Live commands: flags and exit codes")
struct LiveCLITests {
    @Test(
        "bad numbers, durations, windows, URLs and ports are usage errors (exit 64) with a sentence",
        arguments: [
            (["load", "http://127.0.0.1:9/", "--rate", "-5"], "--rate must be in (0, 10000000], got -5"),
            (["load", "http://127.0.0.1:9/", "--rate", "-5e3"], "--rate must be"),
            (["load", "http://127.0.0.1:9/", "--connections", "-1"], "--connections must be"),
            (["load", "http://127.0.0.1:9/", "--window", "1ns"], "--window: window 1ns is out of range"),
            (["load", "http://127.0.0.1:9/", "--window", "1ms", "--duration", "8760h"], "10,000,000 rows"),
            (["load", "http://127.0.0.1:9/", "--duration", "100000h"], "--duration must be in [1ns, 8760h]"),
            (["load", "http://127.0.0.1:9/", "--timeout", "-1s"], "--timeout: '-1s' is negative"),
            (["load", "http://127.0.0.1:9/a\r\nX-Injected: 1"], "control character (CR)"),
            (["load", "http://u:p@127.0.0.1:9/"], "credentials"),
            (["load", "https://127.0.0.1:9/"], "https is not supported"),
            (["serve", "--port", "70000"], "--port must be in 1...65535, got 70000"),
            (["serve", "--port", "-1"], "--port must be in 1...65535, got -1"),
            (["serve", "--port", "9223372036854775807"], "--port must be in 1...65535"),
            (["serve", "--port", "65535", "--replicas", "2"], "2 ports from 65535 do not fit"),
            (["serve", "--workers", "-3"], "--workers must be"),
            (["serve", "--duration", "100000h"], "--duration must be in [1ns, 8760h]"),
            (["serve", "--header-timeout", "-1s"], "--header-timeout: '-1s' is negative"),
            (["serve", "--idle-timeout", "0s"], "--idle-timeout must be in"),
            (["serve", "--max-connections", "0"], "--max-connections must be at least 1"),
            (["serve", "--max-connections", "9223372036854775807", "--replicas", "2"], "needs more descriptors"),
            (["live", "x.yaml", "--proxy", "nginx", "--proxy-port", "70000"], "--proxy-port must be in 1...65535"),
            (["live", "x.yaml", "--proxy", "nginx", "--backend-port", "-2"], "--backend-port must be in 1...65535"),
            (
                ["proxy", "--backends", "127.0.0.1:9", "--concurrency-limit", "bogus"],
                "must be aimd, vegas, gradient2 or scenario"
            ),
            (["proxy", "--backends", "127.0.0.1:9", "--concurrency-limit", "scenario"], "scenario needs --scenario"),
        ]
    )
    func usageErrors(arguments: [String], message: String) throws {
        let outcome = try LiveCLI.run(arguments)
        #expect(outcome.status == 64, "\(arguments): \(outcome.status) \(outcome.stderr)")
        #expect(outcome.stderr.contains(message), "\(arguments): \(outcome.stderr)")
        #expect(!outcome.stderr.contains("Fatal error"))
    }

    @Test("an output folder that cannot be written is found before any work: exit 64, naming the path and reason")
    func unwritableOutput() throws {
        let load = try LiveCLI.run(["load", "http://127.0.0.1:9/", "--duration", "10s", "--out", "/proc/version/x"])
        #expect(load.status == 64)
        #expect(load.stderr.contains("/proc/version/x") && load.stderr.contains("not a folder"), "\(load.stderr)")
        #expect(!load.stderr.contains("NSCocoaErrorDomain"))
        let scenario = try LiveCLI.file(proxyScenario, name: "out.yaml")
        defer { try? FileManager.default.removeItem(atPath: scenario) }
        let live = try LiveCLI.run(["live", scenario, "--proxy", "nginx", "--out", "/proc/version/x"])
        #expect(live.status == 64)
        #expect(
            live.stderr.contains("/proc/version/x") && !live.stderr.contains("NSCocoaErrorDomain"),
            "\(live.stderr)"
        )
    }

    @Test("backend ports that run past 65535 are a usage error, not a trap")
    func backendPortsOverflow() throws {
        let scenario = try LiveCLI.file(proxyScenario, name: "ports.yaml")
        let out = NSTemporaryDirectory() + "meshsim-live-cli-ports-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: scenario)
            try? FileManager.default.removeItem(atPath: out)
        }
        let outcome = try LiveCLI.run(["live", scenario, "--proxy", "nginx", "--backend-port", "65534", "--out", out])
        #expect(outcome.status == 64, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("--backend-port 65534"), "\(outcome.stderr)")
    }

    @Test("policies nginx cannot carry are refused with their key paths (exit 64), never dropped")
    func refusedPolicies() throws {
        let text =
            proxyScenario
                + """

                  - name: guarded
                    set:
                      clients.users.circuit_breaker: {kind: envoy, max_requests: 10}
                      clients.users.outlier_detection: {interval: 1s, consecutive_5xx: 3}
                """
        let scenario = try LiveCLI.file(text, name: "refused.yaml")
        let out = NSTemporaryDirectory() + "meshsim-live-cli-refused-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: scenario)
            try? FileManager.default.removeItem(atPath: out)
        }
        let outcome = try LiveCLI.run(["live", scenario, "--proxy", "nginx", "--out", out])
        #expect(outcome.status == 64, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("variant guarded"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("clients.users.circuit_breaker"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("clients.users.outlier_detection"), "\(outcome.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out + "/summary.csv"))
    }

    @Test("a duration override that gives too many windows is refused before anything starts")
    func liveWindowRows() throws {
        let scenario = try LiveCLI.file(proxyScenario, name: "rows.yaml")
        let out = NSTemporaryDirectory() + "meshsim-live-cli-rows-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: scenario)
            try? FileManager.default.removeItem(atPath: out)
        }
        let outcome = try LiveCLI.run(["live", scenario, "--proxy", "nginx", "--duration", "8760h", "--out", out])
        #expect(outcome.status == 64, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("10,000,000 rows"), "\(outcome.stderr)")
    }

    @Test("a proxy port in use names the process that holds it (exit 69)")
    func proxyPortHolder() async throws {
        let scenario = try LiveCLI.file(proxyScenario, name: "holder.yaml")
        let out = NSTemporaryDirectory() + "meshsim-live-cli-holder-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: scenario)
            try? FileManager.default.removeItem(atPath: out)
        }
        try await withServer { _, _, port in
            let backend = try await LiveCLI.backendPort(avoiding: port)
            let outcome = try LiveCLI.run([
                "live", scenario, "--proxy", "nginx", "--proxy-port", String(port), "--backend-port", String(backend),
                "--out", out, "--quiet",
            ])
            #expect(outcome.status == 69, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("port \(port) is in use by"), "\(outcome.stderr)")
            #expect(outcome.stderr.contains("kill \(getpid())"), "\(outcome.stderr)")
        }
    }

    @Test("SIGINT during live after a variant has finished keeps that variant's results and says so")
    func interruptKeepsFinishedRuns() async throws {
        let short = proxyScenario.replacingOccurrences(of: "duration: 2500ms", with: "duration: 1500ms")
        let scenario = try LiveCLI.file(short, name: "interrupt.yaml")
        let out = NSTemporaryDirectory() + "meshsim-live-cli-interrupt-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: scenario)
            try? FileManager.default.removeItem(atPath: out)
        }
        // Ports picked free can be taken by another test's socket before meshsim binds them: a run refused only for
        // a port in use (exit 69) is repeated on new ports, at most four times.
        var outcome = LiveCLI.Outcome(status: -1, stdout: "", stderr: "")
        for _ in 0..<4 {
            let proxyPort = try await LiveCLI.freePort()
            let backendPort = try await LiveCLI.backendPort(avoiding: proxyPort)
            outcome = try LiveCLI.run(
                [
                    "live", scenario, "--proxy", "nginx", "--proxy-port", String(proxyPort),
                    "--backend-port", String(backendPort), "--out", out, "--quiet",
                ],
                limit: 60,
                interruptWhen: out + "/summary.csv"
            )
            guard outcome.status == 69, outcome.stderr.contains("in use") else { break }
            try? FileManager.default.removeItem(atPath: out)
        }
        #expect(outcome.status == 130, "\(outcome.stdout) \(outcome.stderr)")
        #expect(
            outcome.stderr.contains("interrupted: kept 1 finished run(s) in \(out)/: least_request seed 7"),
            "\(outcome.stderr)"
        )
        let summary = try String(contentsOfFile: out + "/summary.csv", encoding: .utf8)
        let rows = summary.split(separator: "\n")
        #expect(rows.count == 2 && rows[1].hasPrefix("live-small,least_request,7,live,"), "\(summary)")
        #expect(FileManager.default.fileExists(atPath: out + "/least_request-7-latency.hgrm"))
    }
}
