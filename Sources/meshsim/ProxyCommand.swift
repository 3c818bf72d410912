//===----------------------------------------------------------------------===//
// meshsim — command line: the reverse proxy
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation
import Limiters
import Live
import MeshTLS
import NIOCore
import NIOPosix
import Proxy
import Scenario
import SimCore
import Spec

extension MeshSim {
    struct ProxyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "proxy",
            abstract: "Run an HTTP/1.1 reverse proxy that balances with meshsim's own balancer modules.",
            discussion: """
                Forwards every request to one of --backends, picked by --balancer, on keep-alive upstream
                connections pooled per event loop. Each event loop balances on its own (its own active counts and
                seeded random stream).

                With --scenario, the proxy is the one a scenario's client calls through (--client, default the
                first; --variant, default the first): its call edge becomes the routes (direct, weighted split, or
                routes by host and path prefix) and each route's policies with the scenario's key names and
                defaults: the balancer, the per-try timeout, retries (retry_on, backoff, budget), hedging, the
                deadline (passed on in the x-meshsim-deadline-ms header), rate_limit, adaptive_throttle,
                circuit_breaker, outlier_detection, health_check (GET /health), nginx and HAProxy passive_health and
                zone_aware run on the simulator's own state machines. The backends are the target services' running
                replicas at the ports `meshsim serve --scenario FILE --port BASE` gives them (--backend-port BASE).

                With --tls-dir (credentials from `meshsim certs`), the proxy calls the backends over mutual TLS
                with its --identity (default with --scenario: the client's name) and accepts only backends whose
                certificate names their service (--upstream-service with --backends). --tls-listen requires a client
                certificate of the mesh on the listener too, and enforces the scenario's security.authorization
                there (403); --plain-upstream then talks plain HTTP to a local backend.

                Balancers (the scenario names): \(BalancerKind.allCases.map(\.rawValue).joined(separator: ", ")).

                Malformed or ambiguous requests (both Content-Length and Transfer-Encoding, bad chunks, bare LF,
                obsolete folding, NUL) are answered 400 and the connection closed; a head over --max-header-bytes
                or 100 lines 431; a head not complete within --header-timeout, or a body pausing longer than
                --body-timeout, 408. An upstream that cannot be
                reached or breaks is answered 502, one slower than --upstream-timeout 504.

                With --admin, GET /metrics (Prometheus text) and GET /endpoints (JSON) are served there.

                Runs until SIGINT/SIGTERM, then stops accepting, lets requests in flight finish (up to 5 s) and
                exits 0. Exit codes: 0, 64 usage error, 65 bad scenario, 69 a port cannot be bound.
                """
        )

        @Option(help: "Address to accept proxied traffic on (host:port).") var listen = "127.0.0.1:8080"
        @Option(help: "Comma-separated backend addresses (host:port,…).") var backends: String?
        @Option(help: "Balancer (a scenario balancer name; default round_robin).") var balancer: String?
        @Option(help: "Configure from this scenario's client call edge instead of --backends/--balancer.")
        var scenario: String?
        @Option(help: "With --scenario: the variant (default: the first).") var variant: String?
        @Option(help: "With --scenario: the client whose calls pass the proxy (default: the first).") var client:
            String?
        @Option(
            name: .customLong("backend-port"),
            parsing: .unconditional,
            help: "With --scenario: the first port of `meshsim serve --scenario` (replicas on consecutive ports)."
        ) var backendPort: Int?
        @Option(help: "Address of the admin listener for /metrics and /endpoints (host:port).") var admin: String?
        @Option(parsing: .unconditional, help: "Seed of the balancers' random streams.") var seed: UInt64 = 1
        @Option(parsing: .unconditional, help: "Event-loop threads (default: the number of cores).") var threads: Int?
        @Option(
            name: .customLong("upstream-timeout"),
            parsing: .unconditional,
            help: "Longest time for a request's upstream exchange (connect, send, whole response); then 504."
        ) var upstreamTimeout: String?
        @Option(
            name: .customLong("header-timeout"),
            parsing: .unconditional,
            help: "A request head must arrive whole within this; then 408 and close."
        ) var headerTimeout = "10s"
        @Option(
            name: .customLong("body-timeout"),
            parsing: .unconditional,
            help: "Longest pause between reads of a request body; then 408 and close."
        ) var bodyTimeout = "60s"
        @Option(name: .customLong("max-header-bytes"), parsing: .unconditional, help: "Largest request head accepted.")
        var maxHeaderBytes = 16 * 1024
        @Option(
            name: .customLong("tls-dir"),
            help:
                "Mutual TLS with the mesh's credentials from this folder (`meshsim certs`): to the backends, and with --tls-listen on the listener."
        ) var tlsDir: String?
        @Option(help: "With --tls-dir: the proxy's own identity (default with --scenario: the client's name).")
        var identity: String?
        @Option(
            name: .customLong("upstream-service"),
            help:
                "With --tls-dir and --backends: the service identity the backends must present (default: any of the mesh)."
        ) var upstreamService: String?
        @Flag(
            name: .customLong("tls-listen"),
            help:
                "With --tls-dir: require a client certificate of the mesh on the listener and enforce the scenario's security.authorization there."
        ) var tlsListen = false
        @Flag(
            name: .customLong("plain-upstream"),
            help: "With --tls-dir: talk plain HTTP to the backends (a server-side proxy in front of a local backend)."
        ) var plainUpstream = false
        @Option(
            name: .customLong("concurrency-limit"),
            help:
                "An adaptive concurrency limit per cluster: aimd, vegas or gradient2 (their default settings), or with --scenario `scenario` (each cluster takes its service's concurrency_limit)."
        ) var concurrencyLimit: String?
        @Option(
            name: .customLong("max-pending"),
            parsing: .unconditional,
            help: "Requests in flight per event loop beyond which new ones are answered 503."
        ) var maxPending = 10_000

        /// The configuration the flags describe (one cluster, one route).
        func makeConfiguration() throws -> ProxyConfiguration {
            guard let listenAddress = ProxyAddress(parsing: listen) else {
                throw ValidationError("--listen must be host:port with a port in 0...65535, got \(listen)")
            }
            var adminAddress: ProxyAddress?
            if let admin {
                guard let parsed = ProxyAddress(parsing: admin) else {
                    throw ValidationError("--admin must be host:port with a port in 0...65535, got \(admin)")
                }
                adminAddress = parsed
            }
            var configuration: ProxyConfiguration
            var spec: MeshSpec?
            if let scenario {
                (configuration, spec) = try scenarioConfiguration(scenario, listen: listenAddress)
                configuration.admin = adminAddress
            } else {
                configuration = try flagConfiguration(listen: listenAddress, admin: adminAddress)
            }
            configuration.tls = try tlsConfiguration(spec: spec)
            if let concurrencyLimit { try applyConcurrencyLimit(concurrencyLimit, spec: spec, to: &configuration) }
            configuration.seed = seed
            configuration.threads = threads ?? System.coreCount
            if let upstreamTimeout {
                configuration.upstreamTimeout = .nanoseconds(
                    try parseDuration(upstreamTimeout, flag: "--upstream-timeout")
                )
            }
            configuration.headerTimeout = .nanoseconds(try parseDuration(headerTimeout, flag: "--header-timeout"))
            configuration.bodyTimeout = .nanoseconds(try parseDuration(bodyTimeout, flag: "--body-timeout"))
            configuration.maxHeadBytes = maxHeaderBytes
            configuration.maxPendingPerLoop = maxPending
            return configuration
        }

        /// Sets each cluster's adaptive concurrency limit from `--concurrency-limit`.
        func applyConcurrencyLimit(_ kind: String, spec: MeshSpec?, to configuration: inout ProxyConfiguration) throws {
            for c in configuration.clusters.indices {
                switch kind {
                case "aimd": configuration.clusters[c].concurrencyLimit = .aimd(try AIMDLimit.Configuration())
                case "vegas": configuration.clusters[c].concurrencyLimit = .vegas(try VegasLimit.Configuration())
                case "gradient2":
                    configuration.clusters[c].concurrencyLimit = .gradient2(try Gradient2Limit.Configuration())
                case "scenario":
                    guard let spec else {
                        throw ValidationError("--concurrency-limit scenario needs --scenario")
                    }
                    let service = spec.services.first { $0.name == configuration.clusters[c].service }
                    configuration.clusters[c].concurrencyLimit = service?.concurrencyLimit
                default:
                    throw ValidationError(
                        "--concurrency-limit must be aimd, vegas, gradient2 or scenario, got \"\(kind)\""
                    )
                }
            }
            if kind == "scenario" && !configuration.clusters.contains(where: { $0.concurrencyLimit != nil }) {
                throw ValidationError(
                    "--concurrency-limit scenario: no service the proxy calls has a concurrency_limit"
                )
            }
        }

        /// The mutual TLS of `--tls-dir` and its companions, or `nil` without it.
        func tlsConfiguration(spec: MeshSpec?) throws -> ProxyTLS? {
            guard let tlsDir else {
                if identity != nil || upstreamService != nil || tlsListen || plainUpstream {
                    throw ValidationError(
                        "--identity, --upstream-service, --tls-listen and --plain-upstream go with --tls-dir"
                    )
                }
                return nil
            }
            if upstreamService != nil && spec != nil {
                throw ValidationError(
                    "--upstream-service goes with --backends; with --scenario the backends' services are known"
                )
            }
            if plainUpstream && !tlsListen {
                throw ValidationError("--plain-upstream without --tls-listen leaves nothing to run mutual TLS on")
            }
            var name = identity
            if name == nil, let spec {
                let index = client.flatMap { c in spec.clients.firstIndex { $0.name == c } } ?? 0
                name = spec.clients.indices.contains(index) ? spec.clients[index].name : nil
            }
            guard let name else {
                throw ValidationError("--tls-dir with --backends needs --identity, the proxy's own name")
            }
            let credentials: MeshCredentials
            do {
                credentials = try MeshCredentials.load(from: tlsDir, names: [name])
            } catch {
                throw ValidationError("--tls-dir: \(error)")
            }
            return ProxyTLS(
                credentials: credentials,
                identity: name,
                upstream: !plainUpstream,
                listener: tlsListen,
                authorization: tlsListen ? spec?.security?.authorization : nil
            )
        }

        /// The configuration of `--scenario`: the client's call edge, backends from `--backend-port`.
        func scenarioConfiguration(_ path: String, listen: ProxyAddress) throws -> (ProxyConfiguration, MeshSpec) {
            if backends != nil || balancer != nil {
                throw ValidationError(
                    "--scenario takes its backends and balancer from the scenario: drop --backends and --balancer"
                )
            }
            guard let backendPort else {
                throw ValidationError("--scenario needs --backend-port, the first port of `meshsim serve --scenario`")
            }
            guard (1...65535).contains(backendPort) else {
                throw ValidationError("--backend-port must be in 1...65535, got \(backendPort)")
            }
            let loaded = try loadScenario(path, variants: variant.map { [$0] } ?? [])
            let spec = loaded.variants[0].spec
            let index: Int
            if let client {
                guard let found = spec.clients.firstIndex(where: { $0.name == client }) else {
                    let names = spec.clients.map(\.name)
                    let hint = closestName(to: client, among: names).map { " (did you mean \($0)?)" } ?? ""
                    throw ValidationError(
                        "--client: no client \"\(client)\" in \(path)\(hint); one of \(names.joined(separator: ", "))"
                    )
                }
                index = found
            } else {
                guard !spec.clients.isEmpty else { throw ValidationError("\(path) has no client") }
                index = 0
            }
            let total = spec.services.reduce(0) { $0 + $1.replicas.count }
            guard total <= 65536 - backendPort else {
                throw ValidationError(
                    "--backend-port \(backendPort): the \(total) replica ports from it must fit in 1...65535"
                )
            }
            do {
                let configuration = try ProxyConfiguration(
                    spec: spec,
                    client: index,
                    backendPort: backendPort,
                    listen: listen
                )
                return (configuration, spec)
            } catch let error as ProxyError {
                throw ValidationError("\(path): \(error)")
            }
        }

        /// The configuration of `--backends` and `--balancer`: one cluster, one route.
        func flagConfiguration(listen listenAddress: ProxyAddress, admin adminAddress: ProxyAddress?) throws
            -> ProxyConfiguration
        {
            guard let backends else { throw ValidationError("give --backends (or --scenario with --backend-port)") }
            if variant != nil || client != nil || backendPort != nil {
                throw ValidationError("--variant, --client and --backend-port go with --scenario")
            }
            let balancer = self.balancer ?? "round_robin"
            var backendAddresses: [ProxyAddress] = []
            for item in backends.split(separator: ",", omittingEmptySubsequences: false) {
                let text = item.trimmingCharacters(in: .whitespaces)
                guard let address = ProxyAddress(parsing: text), address.port > 0 else {
                    throw ValidationError("--backends: \"\(text)\" is not host:port with a port in 1...65535")
                }
                backendAddresses.append(address)
            }
            guard let kind = BalancerKind(rawValue: balancer) else {
                let names = BalancerKind.allCases.map(\.rawValue)
                let hint = closestName(to: balancer, among: names).map { " (did you mean \($0)?)" } ?? ""
                throw ValidationError(
                    "--balancer: unknown balancer \"\(balancer)\"\(hint); one of \(names.joined(separator: ", "))"
                )
            }
            var configuration = ProxyConfiguration.singleCluster(
                listen: listenAddress,
                backends: backendAddresses,
                balancer: BalancerSpec(kind),
                admin: adminAddress
            )
            configuration.clusters[0].service = upstreamService
            return configuration
        }

        func validate() throws {
            if let threads, threads < 1 || threads > 256 {
                throw ValidationError("--threads must be in 1...256, got \(threads)")
            }
            if maxHeaderBytes < 256 || maxHeaderBytes > 1 << 20 {
                throw ValidationError("--max-header-bytes must be in 256...1048576, got \(maxHeaderBytes)")
            }
            if maxPending < 1 { throw ValidationError("--max-pending must be at least 1, got \(maxPending)") }
            _ = try makeConfiguration()
        }

        func run() async throws {
            raiseFileLimit()
            let configuration = try makeConfiguration()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
            let server: ProxyServer
            do {
                server = try ProxyServer(configuration: configuration, group: group)
                try await server.start()
            } catch let error as ProxyError {
                if case .bindFailed(let address, _, true) = error, let holder = PortOwner.describe(port: address.port) {
                    printError("error: cannot listen on \(address): \(holder)")
                } else {
                    printError("error: \(error)")
                }
                try? await group.shutdownGracefully()
                switch error {
                case .bindFailed: throw ExitCode(69)
                case .invalid: throw ExitCode(64)
                }
            }
            if let address = server.listeningAddress {
                let line =
                    "proxying http://\(address.ipAddress ?? configuration.listen.host):\(address.port ?? 0)/ to "
                    + "\(configuration.clusters[0].backends.map(\.description).joined(separator: ", ")) "
                    + "(\(configuration.clusters[0].balancer.kind.rawValue), \(configuration.threads) thread(s)"
                    + (configuration.tls.map { tls in
                        ", mutual TLS as \(tls.identity)" + (tls.listener ? " on the listener" : "")
                            + (tls.upstream ? " to the backends" : "")
                    } ?? "") + ")\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
            if let address = server.adminAddress {
                let line = "admin on http://\(address.ipAddress ?? ""):\(address.port ?? 0)/metrics and /endpoints\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
            await waitForSignal()
            await server.stop()
            try? await group.shutdownGracefully()
        }
    }
}
