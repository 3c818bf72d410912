//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import Foundation
import NIOCore
import Spec

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Writes an nginx or HAProxy configuration for a ``LivePlan`` and runs the proxy as a child process on loopback.
///
/// Both run with one worker (nginx `worker_processes 1`, HAProxy `nbthread 1`) so that the balancer's state is one
/// state, as in the simulator (loadgen-and-proxies.md §5.4: nginx workers without a shared zone balance
/// independently). Upstream keep-alive is on (nginx 1.22 needs `keepalive`, HTTP/1.1 and an empty `Connection`
/// header). Passive health checks are off (nginx `max_fails=0`; HAProxy has no `check`), so what is measured is the
/// balancer; retries follow the client's `retries`.
public final class ProxyProcess: @unchecked Sendable {
    /// Which proxy.
    public let kind: ProxyKind
    /// The folder holding its configuration, logs and temporary files.
    public let directory: String
    /// The configuration text it runs.
    public let configuration: String
    private let process = Process()
    private let stderrPipe = Pipe()

    /// The balancer directive for `kind`, or `nil` when the proxy has no equivalent of `balancer`.
    public static func balanceDirective(_ balancer: BalancerKind, for kind: ProxyKind, draws: Int = 2) -> String? {
        switch (kind, balancer) {
        case (.nginx, .roundRobin), (.nginx, .weightedRoundRobin): return ""
        case (.nginx, .leastRequest), (.nginx, .nginxLeastConn): return "least_conn;"
        case (.nginx, .nginxRandomTwoLeastConn): return "random two least_conn;"
        case (.nginx, .random): return "random;"
        case (.haproxy, .roundRobin), (.haproxy, .weightedRoundRobin): return "balance roundrobin"
        case (.haproxy, .leastRequest), (.haproxy, .haproxyLeastConn): return "balance leastconn"
        case (.haproxy, .haproxyRandom): return "balance random(\(draws))"
        case (.haproxy, .random): return "balance random(1)"
        default: return nil
        }
    }

    /// The configuration file text for `plan` with the proxy listening on `port`.
    public static func configuration(for kind: ProxyKind, plan: LivePlan, port: Int, directory: String) throws
        -> String
    {
        guard let balance = balanceDirective(plan.balancer, for: kind, draws: plan.draws) else {
            throw LiveError.invalid(
                "balancer \(plan.balancer.rawValue) has no \(kind.rawValue) equivalent (nginx: round_robin, "
                    + "least_request or nginx_least_conn, nginx_random_two_least_conn, random; haproxy: round_robin, "
                    + "least_request or haproxy_leastconn, haproxy_random, random)"
            )
        }
        let timeout = plan.attemptTimeout.map { "\(max(1, $0 / 1_000_000))ms" } ?? "60s"
        // Spares do not listen (no `scale` runs live), so they are not upstream servers, as in the simulator.
        let servers = plan.backends.replicas.filter(\.initiallyActive)
        guard !servers.isEmpty else { throw LiveError.invalid("the called service has no running replica") }
        switch kind {
        case .meshsim:
            throw LiveError.invalid("meshsim proxy is configured from the plan's call policy, not from a file")
        case .nginx:
            let upstreams = servers.map { "        server 127.0.0.1:\($0.port) weight=\($0.weight) max_fails=0;" }
                .joined(separator: "\n")
            let retry =
                plan.retries > 0
                ? "proxy_next_upstream error timeout http_500 http_502 http_503 http_504 non_idempotent;\n"
                    + "            proxy_next_upstream_tries \(plan.retries + 1);"
                : "proxy_next_upstream off;"
            return """
                worker_processes 1;
                worker_rlimit_nofile 65536;
                daemon off;
                pid \(directory)/nginx.pid;
                error_log \(directory)/error.log warn;
                events { worker_connections 4096; }
                http {
                    access_log off;
                    client_body_temp_path \(directory)/body;
                    proxy_temp_path \(directory)/proxy;
                    fastcgi_temp_path \(directory)/fastcgi;
                    uwsgi_temp_path \(directory)/uwsgi;
                    scgi_temp_path \(directory)/scgi;
                    keepalive_requests 1000000;
                    upstream backends {
                        \(balance)
                        zone backends 256k;
                \(upstreams)
                        keepalive 256;
                        keepalive_requests 1000000;
                    }
                    server {
                        listen 127.0.0.1:\(port) backlog=4096;
                        location / {
                            proxy_pass http://backends;
                            proxy_http_version 1.1;
                            proxy_set_header Connection "";
                            \(retry)
                            proxy_connect_timeout 1s;
                            proxy_read_timeout \(timeout);
                        }
                    }
                }

                """
        case .haproxy:
            let lines = servers.enumerated().map {
                "    server s\($0.offset) 127.0.0.1:\($0.element.port) weight \($0.element.weight)"
            }
            let retry =
                plan.retries > 0
                ? "    retries \(plan.retries)\n    retry-on conn-failure empty-response response-timeout 500 502 503 504\n    option redispatch 1"
                : "    retries 0"
            return """
                global
                    nbthread 1
                    maxconn 4096
                defaults
                    mode http
                    timeout connect 1s
                    timeout client 60s
                    timeout server \(timeout)
                    timeout queue 5s
                    option http-keep-alive
                \(retry)
                frontend fe
                    bind 127.0.0.1:\(port)
                    default_backend be
                backend be
                    \(balance)
                \(lines.joined(separator: "\n"))

                """
        }
    }

    /// Finds the proxy's binary on PATH or in /usr/sbin.
    public static func binary(for kind: ProxyKind) throws -> String {
        let name = kind.rawValue
        var directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        directories += ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
            return directory + "/" + name
        }
        let package = kind == .nginx ? "nginx-light" : "haproxy"
        throw LiveError.proxy(
            "\(name) was not found on PATH or in /usr/sbin; install it with: apt-get install -y \(package)"
        )
    }

    /// Writes the configuration into `directory` and starts the proxy; returns once it accepts connections.
    public init(kind: ProxyKind, plan: LivePlan, port: Int, directory relativeDirectory: String) throws {
        // nginx resolves relative paths against its prefix (-p), so every path it sees is absolute.
        let directory = URL(fileURLWithPath: relativeDirectory).standardizedFileURL.path
        self.kind = kind
        self.directory = directory
        let executable = try Self.binary(for: kind)
        guard (1...65535).contains(port) else {
            throw LiveError.invalid("the proxy port must be in 1...65535, got \(port)")
        }
        if Self.canConnect(port: port) {
            // A proxy left from another run would answer in place of the new one: say which process to stop.
            throw LiveError.bindFailed(
                host: "127.0.0.1",
                port: port,
                reason: PortOwner.describe(port: port)
                    ?? "something already listens there (its process could not be seen; try: ss -ltnp 'sport = :\(port)')"
            )
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        configuration = try Self.configuration(for: kind, plan: plan, port: port, directory: directory)
        let file = directory + "/" + (kind == .nginx ? "nginx.conf" : "haproxy.cfg")
        try configuration.write(toFile: file, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: executable)
        switch kind {
        case .nginx: process.arguments = ["-e", directory + "/error.log", "-p", directory, "-c", file]
        case .haproxy: process.arguments = ["-db", "-f", file]
        case .meshsim: throw LiveError.invalid("meshsim proxy runs in process, not as a separate binary")
        }
        process.standardError = stderrPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Wait until it listens (or dies).
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !process.isRunning {
                let output = String(decoding: stderrPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                let log = (try? String(contentsOfFile: directory + "/error.log", encoding: .utf8)) ?? ""
                throw LiveError.proxy(
                    "\(kind.rawValue) exited at start (status \(process.terminationStatus)): \(output)\(log)"
                )
            }
            if Self.canConnect(port: port) {
                // It listens; make sure it stays up (a failed bind of a second listener shows up a moment later).
                usleep(100_000)
                if process.isRunning {
                    ProxyProcess.running.withLock { $0[ObjectIdentifier(self)] = self }
                    return
                }
                continue
            }
            usleep(20_000)
        }
        stop()
        throw LiveError.proxy("\(kind.rawValue) did not listen on 127.0.0.1:\(port) within 10 s")
    }

    /// Stops the proxy (SIGTERM, then SIGKILL after 5 s) and waits for it.
    public func stop() {
        ProxyProcess.running.withLock { $0[ObjectIdentifier(self)] = nil }
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        let children = Self.children(of: pid)
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            // nginx's workers do not exit when their master is killed: kill them too.
            for child in children + Self.children(of: pid) { kill(child, SIGKILL) }
            kill(pid, SIGKILL)
        }
        process.waitUntilExit()
    }

    /// Stops every proxy this process started that is still running (for SIGINT/SIGTERM).
    public static func stopAll() {
        let all = running.withLock { Array($0.values) }
        for proxy in all { proxy.stop() }
    }

    /// The proxies started and not yet stopped.
    private static let running = LockedBox<[ObjectIdentifier: ProxyProcess]>([:])

    /// The child processes of `pid` (from /proc; empty where that is not available).
    static func children(of pid: Int32) -> [Int32] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else {
            return []
        }
        return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Whether a TCP connect to 127.0.0.1:`port` succeeds now.
    static func canConnect(port: Int) -> Bool {
        guard (1...65535).contains(port) else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let address = try? SocketAddress(ipAddress: "127.0.0.1", port: port) else { return false }
        return address.withSockAddr { pointer, size in connect(fd, pointer, socklen_t(size)) == 0 }
    }

    deinit { stop() }
}

/// A value behind a lock, for the little state shared across threads outside the event loops.
public final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    /// Boxes `value`.
    public init(_ value: Value) { self.value = value }
    /// Runs `body` with the value, under the lock.
    public func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
