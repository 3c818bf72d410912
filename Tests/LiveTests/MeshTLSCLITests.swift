import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `meshsim certs`, and `serve` and `proxy` over mutual TLS from the command line.
@Suite("Mutual TLS from the command line", .serialized, .timeLimit(.minutes(2)))
struct MeshTLSCLITests {
    static let scenario = """
        name: cli-mtls
        duration: 10s
        services:
          api:
            replicas: 2
            service_time: "constant:0ms"
        clients:
          users:
            target: api
            rate: 10
        security:
          mtls: true
          trust_domain: cli.test
          authorization:
            - {action: deny, to: api, paths: [/admin]}
        """

    @Test(
        "bad certs, serve and proxy TLS flags are usage errors (exit 64) with a sentence",
        arguments: [
            (["certs", "--out", "x"], "give a scenario or --names"),
            (["certs", "s.yaml", "--names", "a", "--out", "x"], "give a scenario or --names"),
            (["certs", "--names", "a,,b", "--out", "x"], "--names: a comma-separated list"),
            (["certs", "--names", "a", "--trust-domain", "Bad Domain", "--out", "x"], "--trust-domain: lowercase"),
            (["serve", "--tls-dir", "x"], "--tls-dir needs --scenario"),
            (["proxy", "--backends", "127.0.0.1:9", "--tls-dir", "/nonexistent-meshsim"], "needs --identity"),
            (["proxy", "--backends", "127.0.0.1:9", "--identity", "a"], "go with --tls-dir"),
            (
                ["proxy", "--backends", "127.0.0.1:9", "--tls-dir", "/nonexistent-meshsim", "--identity", "a"],
                "--tls-dir: /nonexistent-meshsim/ca.pem: cannot read the file"
            ),
        ]
    )
    func usageErrors(arguments: [String], message: String) throws {
        let outcome = try LiveCLI.run(arguments)
        #expect(outcome.status == 64, "\(arguments): \(outcome.status) \(outcome.stderr)")
        #expect(outcome.stderr.contains(message), "\(arguments): \(outcome.stderr)")
    }

    /// A `meshsim` process left running in the background, its standard output in a file.
    final class Background {
        let process = Process()
        let output: String

        init(_ arguments: [String], name: String) throws {
            output = NSTemporaryDirectory() + "meshsim-tls-cli-\(getpid())-\(name).out"
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            process.executableURL = URL(fileURLWithPath: LiveCLI.binary)
            process.arguments = arguments
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            process.standardError = process.standardOutput
            try process.run()
        }

        /// Waits (at most 10 s) until the process has printed `text`.
        func wait(for text: String) -> Bool {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if let printed = try? String(contentsOfFile: output, encoding: .utf8), printed.contains(text) {
                    return true
                }
                if !process.isRunning { return false }
                usleep(20_000)
            }
            return false
        }

        /// What the process has printed so far.
        var printed: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: output)
        }
    }

    /// Starts `serve` and three proxies: the client's, api's own behind a mutual-TLS listener, and one in front of
    /// api's proxy checking that it is api.
    func startMesh(
        scenario: String,
        directory: String,
        ports: (serve: Int, front: Int, back: Int, chain: Int)
    ) throws -> [Background] {
        var started: [Background] = []
        started.append(
            try Background(
                ["serve", "--scenario", scenario, "--tls-dir", directory, "--port", "\(ports.serve)"],
                name: "serve"
            )
        )
        // The client's proxy: plain listener, mutual TLS to the replicas with the identity `users`.
        started.append(
            try Background(
                [
                    "proxy", "--scenario", scenario, "--backend-port", "\(ports.serve)", "--listen",
                    "127.0.0.1:\(ports.front)", "--tls-dir", directory, "--threads", "1",
                ],
                name: "front"
            )
        )
        // api's own proxy: a mutual-TLS listener enforcing the rules, mutual TLS on to the replicas as `api`.
        started.append(
            try Background(
                [
                    "proxy", "--scenario", scenario, "--backend-port", "\(ports.serve)", "--listen",
                    "127.0.0.1:\(ports.back)", "--tls-dir", directory, "--identity", "api", "--tls-listen",
                    "--threads", "1",
                ],
                name: "back"
            )
        )
        // A proxy in front of api's proxy, checking that it is api.
        started.append(
            try Background(
                [
                    "proxy", "--backends", "127.0.0.1:\(ports.back)", "--listen", "127.0.0.1:\(ports.chain)",
                    "--tls-dir", directory, "--identity", "users", "--upstream-service", "api", "--threads", "1",
                ],
                name: "chain"
            )
        )
        return started
    }

    /// The status code of `GET path` on `port`.
    func status(port: Int, _ path: String) throws -> Int? {
        let response = try exchange(
            port: port,
            Array("GET \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8)
        )
        return response.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    @Test("certs, then serve and two proxies over mutual TLS: the rules answer 403, a plain caller gets nothing")
    func endToEnd() async throws {
        let scenario = try LiveCLI.file(Self.scenario, name: "cli-mtls.yaml")
        let directory = NSTemporaryDirectory() + "meshsim-tls-cli-\(getpid())-certs"
        defer {
            try? FileManager.default.removeItem(atPath: scenario)
            try? FileManager.default.removeItem(atPath: directory)
        }
        let certs = try LiveCLI.run(["certs", scenario, "--out", directory])
        #expect(certs.status == 0, "\(certs.stderr)")
        #expect(certs.stdout.contains("spiffe://cli.test/ns/default/sa/api"))
        #expect(certs.stdout.contains("spiffe://cli.test/ns/default/sa/users"))
        // Ports picked free can be taken by another test's socket before a process binds them: a start that fails
        // only for a port in use is repeated on new ports, at most four times.
        var running: [Background] = []
        defer { for process in running { process.stop() } }
        var ports = (serve: 0, front: 0, back: 0, chain: 0)
        for attempt in 1...4 {
            ports = (
                try await LiveCLI.backendPort(avoiding: 0), try await LiveCLI.freePort(),
                try await LiveCLI.freePort(), try await LiveCLI.freePort()
            )
            running = try startMesh(scenario: scenario, directory: directory, ports: ports)
            let ready =
                running[0].wait(for: "api replica 1") && running[1].wait(for: "proxying")
                && running[2].wait(for: "proxying") && running[3].wait(for: "proxying")
            if ready { break }
            let printed = running.map(\.printed).joined(separator: "\n")
            for process in running { process.stop() }
            running = []
            guard printed.contains("in use"), attempt < 4 else {
                Issue.record("the processes did not start: \(printed)")
                return
            }
        }
        let (servePort, frontPort, backPort, chainPort) = ports
        #expect(try status(port: frontPort, "/") == 200)
        #expect(try status(port: frontPort, "/admin/keys") == 403)
        #expect(try status(port: chainPort, "/") == 200)
        #expect(try status(port: chainPort, "/admin") == 403)
        // Without a certificate of the mesh nothing gets an answer.
        #expect(try status(port: servePort, "/") == nil)
        #expect(try status(port: backPort, "/") == nil)
    }
}
