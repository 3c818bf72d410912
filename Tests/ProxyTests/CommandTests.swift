import Foundation
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs of the built `meshsim proxy`: flag errors, a port in use, and a clean stop on SIGINT.
@Suite("meshsim proxy command", .timeLimit(.minutes(1)))
struct CommandTests {
    /// The `meshsim` binary beside the test bundle.
    static var binary: String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("meshsim").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        return root + "/.build/debug/meshsim"
    }

    /// Runs `meshsim proxy arguments`; once stdout contains `interruptAfter`, sends SIGINT. Killed after 20 s.
    static func run(_ arguments: [String], interruptAfter: String? = nil) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let directory = NSTemporaryDirectory() + "meshsim-proxy-cli-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (outPath, errPath) = (directory + "/stdout", directory + "/stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["proxy"] + arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        var interrupted = false
        while process.isRunning && Date() < deadline {
            if let marker = interruptAfter, !interrupted,
                let text = try? String(contentsOfFile: outPath, encoding: .utf8), text.contains(marker)
            {
                interrupted = true
                kill(process.processIdentifier, SIGINT)
            }
            usleep(20_000)
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, stdout, stderr)
    }

    @Test("bad flags exit 64 with a sentence naming the flag")
    func badFlags() throws {
        let balancer = try Self.run(["--backends", "127.0.0.1:9001", "--balancer", "p2c_peak_ewm"])
        #expect(balancer.status == 64)
        #expect(balancer.stderr.contains("did you mean p2c_peak_ewma?"))
        let backends = try Self.run(["--backends", "127.0.0.1"])
        #expect(backends.status == 64)
        #expect(backends.stderr.contains("--backends"))
        let threads = try Self.run(["--backends", "127.0.0.1:9001", "--threads", "0"])
        #expect(threads.status == 64)
        let timeout = try Self.run(["--backends", "127.0.0.1:9001", "--upstream-timeout", "soon"])
        #expect(timeout.status == 64)
        #expect(timeout.stderr.contains("--upstream-timeout"))
    }

    @Test("a listen port in use exits 69; SIGINT stops a running proxy with 0")
    func portInUseAndSignal() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let holder = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(holder.localAddress?.port)
        let inUse = try Self.run(["--listen", "127.0.0.1:\(port)", "--backends", "127.0.0.1:9001", "--threads", "1"])
        #expect(inUse.status == 69)
        #expect(inUse.stderr.contains("cannot listen on 127.0.0.1:\(port)"))
        try await holder.close()
        try await group.shutdownGracefully()

        let running = try Self.run(
            ["--listen", "127.0.0.1:0", "--backends", "127.0.0.1:9001", "--threads", "1"],
            interruptAfter: "proxying"
        )
        #expect(running.status == 0)
        #expect(running.stdout.contains("(round_robin, 1 thread(s))"))
    }
}
