//===----------------------------------------------------------------------===//
// meshsim — command line: the live half
//===----------------------------------------------------------------------===//

import ArgumentParser
import Dispatch
import Foundation
import Live
import MeshModel
import MeshTLS
import NIOCore
import NIOPosix
import Runner
import Scenario
import SharedModel
import SimCore
import SimRandom
import Spec

/// Parses a duration flag within the limits of a scenario file's durations ([1ns, 8760h], or from 0 with
/// `allowZero`), or throws a usage error naming it.
func parseDuration(_ text: String, flag: String, allowZero: Bool = false) throws -> Int64 {
    let value: Int64
    do {
        value = try SimDuration(parsing: text).nanoseconds
    } catch {
        throw ValidationError("\(flag): \(error)")
    }
    let upper = RunLimits.duration.upperBound
    let lower = allowZero ? SimDuration.zero : RunLimits.duration.lowerBound
    guard (lower...upper).contains(SimDuration(nanoseconds: value)) else {
        throw ValidationError("\(flag) must be in [\(lower.formatted), \(upper.formatted)], got \(text)")
    }
    return value
}

/// Checks that a port flag is in 1...65535 and that `count` consecutive ports from it fit there too.
func checkPorts(_ port: Int, count: Int = 1, flag: String) throws {
    guard (1...65535).contains(port) else { throw ValidationError("\(flag) must be in 1...65535, got \(port)") }
    if count > 65536 - port {
        throw ValidationError("\(flag): \(count) ports from \(port) do not fit below 65536")
    }
}

/// Raises the soft limit on open files to the hard limit: a load run holds many sockets.
func raiseFileLimit() {
    var limit = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(resource, &limit)
}

/// What `live` has kept so far: the output folder and the runs already written to it.
struct LiveProgress {
    /// The output folder.
    var directory = ""
    /// The runs written, as "variant seed N".
    var kept: [String] = []
}

/// The progress of the `live` command, read by its signal handler; writers hold the lock while writing the files,
/// so an interruption never sees them half-written.
let liveProgress = LockedBox(LiveProgress())

/// On SIGINT or SIGTERM, stops the proxies this process started, says which finished runs were kept, then exits 130.
func stopProxiesOnSignal() {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    var sources: [any DispatchSourceSignal] = []
    for number in [SIGINT, SIGTERM] {
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            ProxyProcess.stopAll()
            liveProgress.withLock { progress in
                if progress.kept.isEmpty {
                    printError("interrupted: no run had finished; nothing was kept")
                } else {
                    printError(
                        "interrupted: kept \(progress.kept.count) finished run(s) in \(progress.directory)/: "
                            + progress.kept.joined(separator: ", ")
                    )
                }
                exit(130)
            }
        }
        source.resume()
        sources.append(source)
    }
    signalSources.withLock { $0 = sources }
}

/// Waits for SIGINT or SIGTERM.
func waitForSignal() async {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let once = LockedBox(false)
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let first = once.withLock { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume() }
            }
            source.resume()
            sources.append(source)
        }
        signalSources.withLock { $0 = sources }
    }
}

/// Keeps the signal sources alive while waiting.
let signalSources = LockedBox<[any DispatchSourceSignal]>([])

/// Maps live errors to exit codes: 64 for bad flags or a scenario that cannot run live, 69 for a missing proxy or a
/// port that cannot be bound.
func liveExitCode(for error: LiveError) -> ExitCode {
    switch error {
    case .invalid: return ExitCode(64)
    case .bindFailed, .proxy: return ExitCode(69)
    }
}

extension MeshSim {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run emulated HTTP/1.1 backends on 127.0.0.1 (worker slots, a bounded queue, service times).",
            discussion: """
                Each replica listens on its own port, from --port upwards. A request waits for one of the replica's
                --workers; when --queue requests already wait it is answered 503 at once. Service times are drawn
                from the simulator's distributions (e.g. constant:10ms, exponential:mean=5ms,
                lognormal:median=2ms,p99=8ms) and waited with timers. GET /health answers 200 at once. A malformed
                request is answered 400 (431 for a head over --max-header-bytes) and its connection closed.
                A head must arrive whole within --header-timeout, a body may pause at most --body-timeout (both:
                408 and close), and an idle keep-alive connection is closed after --idle-timeout. Each replica
                holds at most --max-connections connections; at the cap it stops accepting until one closes.

                With --scenario, serves the replicas of every service of the scenario on consecutive ports (or only
                --service) and applies the scenario's faults in wall time from the start: crash (refuse and reset),
                slowdown, service_time, errors, pause, zone_outage.

                Runs until SIGINT/SIGTERM, or for --duration. Exit codes: 0, 64 usage error, 65 bad scenario,
                69 a port cannot be bound (the message names the process that holds it, when it can be seen).
                """
        )

        @Option(parsing: .unconditional, help: "Number of replicas (ports --port, --port + 1, …).") var replicas = 1
        @Option(parsing: .unconditional, help: "First port.") var port = 9001
        @Option(name: .customLong("service-time"), help: "Service-time distribution.") var serviceTime = "constant:0ms"
        @Option(parsing: .unconditional, help: "Requests served at once per replica.") var workers = 64
        @Option(parsing: .unconditional, help: "Requests that may wait per replica before 503.") var queue = 1024
        @Option(name: .customLong("error-rate"), parsing: .unconditional, help: "Probability of a 500 answer.")
        var errorRate = 0.0
        @Option(parsing: .unconditional, help: "Event-loop threads.") var threads = 1
        @Option(parsing: .unconditional, help: "Seed of the service-time streams.") var seed: UInt64 = 1
        @Option(help: "Serve this scenario's service (see --service) with its faults.") var scenario: String?
        @Option(help: "With --scenario: serve only this service (default: all).") var service: String?
        @Option(
            name: .customLong("tls-dir"),
            help: """
                With --scenario: serve mutual TLS with each service's identity from this folder (`meshsim certs`), \
                requiring a client certificate of the mesh, and enforce the scenario's security.authorization.
                """
        ) var tlsDir: String?
        @Option(parsing: .unconditional, help: "Stop after this long (default: until SIGINT/SIGTERM).")
        var duration: String?
        @Option(name: .customLong("max-header-bytes"), parsing: .unconditional, help: "Largest request head accepted.")
        var maxHeaderBytes = 8192
        @Option(name: .customLong("health-path"), help: "Path of the health endpoint.") var healthPath = "/health"
        @Option(
            name: .customLong("max-requests-per-connection"),
            parsing: .unconditional,
            help: "Close a connection after this many requests, as nginx's keepalive_requests does (0: never)."
        ) var maxRequestsPerConnection = 0
        @Option(
            name: .customLong("header-timeout"),
            parsing: .unconditional,
            help: "A request head must arrive whole within this (nginx client_header_timeout); then 408 and close."
        ) var headerTimeout = "60s"
        @Option(
            name: .customLong("body-timeout"),
            parsing: .unconditional,
            help: "Longest pause between reads of a request body (nginx client_body_timeout); then 408 and close."
        ) var bodyTimeout = "60s"
        @Option(
            name: .customLong("idle-timeout"),
            parsing: .unconditional,
            help: "Close a keep-alive connection idle this long between requests (nginx keepalive_timeout)."
        ) var idleTimeout = "75s"
        @Option(
            name: .customLong("max-connections"),
            parsing: .unconditional,
            help: "Connections per replica before it stops accepting (default: the open-file limit less 256, shared)."
        ) var maxConnections: Int?

        func validate() throws {
            if replicas < 1 || replicas > 1000 {
                throw ValidationError("--replicas must be in 1...1000, got \(replicas)")
            }
            try checkPorts(port, count: replicas, flag: "--port")
            if workers < 1 || workers > 1_000_000 {
                throw ValidationError("--workers must be in 1...1000000, got \(workers)")
            }
            if queue < 0 || queue > 100_000_000 {
                throw ValidationError("--queue must be in 0...100000000, got \(queue)")
            }
            if !(0...1).contains(errorRate) {
                throw ValidationError("--error-rate must be in [0, 1], got \(errorRate)")
            }
            if threads < 1 || threads > 256 { throw ValidationError("--threads must be in 1...256, got \(threads)") }
            if maxHeaderBytes < 256 || maxHeaderBytes > 1 << 20 {
                throw ValidationError("--max-header-bytes must be in 256...1048576, got \(maxHeaderBytes)")
            }
            if maxRequestsPerConnection < 0 {
                throw ValidationError("--max-requests-per-connection must be ≥ 0, got \(maxRequestsPerConnection)")
            }
            if let maxConnections, maxConnections < 1 {
                throw ValidationError("--max-connections must be at least 1, got \(maxConnections)")
            }
            _ = try parseDuration(headerTimeout, flag: "--header-timeout")
            _ = try parseDuration(bodyTimeout, flag: "--body-timeout")
            _ = try parseDuration(idleTimeout, flag: "--idle-timeout")
            if let duration { _ = try parseDuration(duration, flag: "--duration") }
            if tlsDir != nil && scenario == nil {
                throw ValidationError(
                    "--tls-dir needs --scenario: the replicas' identities are the scenario's services"
                )
            }
            do {
                _ = try Distribution.parse(serviceTime)
            } catch {
                throw ValidationError("--service-time: \(error)")
            }
        }

        func run() async throws {
            raiseFileLimit()
            var configuration: BackendConfiguration
            if let scenario {
                let loaded = try loadScenario(scenario)
                var spec = loaded.variants[0].spec
                var services = Array(spec.services.indices)
                if let service {
                    guard let index = spec.services.firstIndex(where: { $0.name == service }) else {
                        printError("error: --service \(service): no such service in \(scenario)")
                        throw ExitCode(64)
                    }
                    services = [index]
                }
                // The backends take the faults that act on replicas; say which others they leave out.
                for (f, fault) in spec.faults.enumerated() where fault.kind.scope != .replicas {
                    printError(
                        "note: \(scenario): faults[\(f)] (\(fault.kind.name)) does not act on replicas; serve leaves it out"
                    )
                }
                spec.faults = spec.faults.filter { $0.kind.scope == .replicas }
                let total = services.reduce(0) { $0 + spec.services[$1].replicas.count }
                guard total <= 65536 - port else {
                    printError("error: --port: \(total) replicas from port \(port) do not fit below 65536")
                    throw ExitCode(64)
                }
                configuration = try LivePlan.backends(spec: spec, services: services, seed: loaded.seed, basePort: port)
                let names = services.map { spec.services[$0].name }
                if let tlsDir {
                    do {
                        configuration.security = try BackendSecurity(
                            credentials: try MeshCredentials.load(from: tlsDir, names: names),
                            services: names,
                            authorization: spec.security?.authorization
                        )
                    } catch {
                        printError("error: --tls-dir: \(error)")
                        throw ExitCode(64)
                    }
                } else if let authorization = spec.security?.authorization {
                    // Rules without identities: callers are anonymous, so only rules without `from` can match.
                    configuration.security = try BackendSecurity(
                        credentials: try MeshCredentials.generate(names: []),
                        services: [],
                        authorization: authorization
                    )
                    if spec.security?.mtls == true {
                        printError("note: \(scenario): security.mtls is on; give --tls-dir to serve mutual TLS")
                    }
                }
            } else {
                let distribution = try Distribution.parse(serviceTime)
                configuration = BackendConfiguration(
                    replicas: (0..<replicas).map {
                        BackendReplica(
                            service: "serve",
                            index: $0,
                            port: port + $0,
                            workers: workers,
                            queueCapacity: queue,
                            serviceTime: distribution,
                            errorRate: errorRate
                        )
                    }
                )
                configuration.seed = seed
            }
            configuration.maxHeadBytes = maxHeaderBytes
            configuration.healthPath = healthPath
            configuration.maxRequestsPerConnection = maxRequestsPerConnection
            configuration.headerTimeout = try parseDuration(headerTimeout, flag: "--header-timeout")
            configuration.bodyTimeout = try parseDuration(bodyTimeout, flag: "--body-timeout")
            configuration.idleTimeout = try parseDuration(idleTimeout, flag: "--idle-timeout")
            let fileLimit = BackendConfiguration.openFileLimit()
            if let maxConnections {
                let (product, overflow) = maxConnections.multipliedReportingOverflow(by: configuration.replicas.count)
                if let fileLimit, overflow || product > fileLimit - BackendConfiguration.fileReserve {
                    printError(
                        "error: --max-connections \(maxConnections) × \(configuration.replicas.count) replica(s) needs "
                            + "more descriptors than the open-file limit (\(fileLimit)) less a reserve of "
                            + "\(BackendConfiguration.fileReserve); lower it or raise the limit (ulimit -n)"
                    )
                    throw ExitCode(64)
                }
                configuration.maxConnectionsPerReplica = maxConnections
            }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            let server = BackendServer(configuration: configuration, group: group)
            do {
                try await server.start()
            } catch let error as LiveError {
                printError("error: \(error)")
                await server.stop()
                try? await group.shutdownGracefully()
                throw liveExitCode(for: error)
            }
            for replica in configuration.replicas {
                let scheme = configuration.security?.contexts[replica.service] != nil ? "https" : "http"
                let tls = scheme == "https" ? ", mutual TLS" : ""
                let line =
                    "listening on \(scheme)://127.0.0.1:\(replica.port)/ (\(replica.service) replica \(replica.index)\(tls))\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
            if let duration {
                try await Task.sleep(nanoseconds: UInt64(try parseDuration(duration, flag: "--duration")))
            } else {
                await waitForSignal()
            }
            await server.stop()
            try? await group.shutdownGracefully()
        }
    }

    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send HTTP/1.1 load to a URL: open loop at --rate without coordinated omission, or closed loop.",
            discussion: """
                Open loop (--rate): requests are planned at intended times (--arrival constant or poisson; steps and
                ramps with --schedule) and latency is measured from each intended time, so stalls of the target are
                counted in full. The service time (from the actual send) and the send lag (intended → actual send)
                are reported beside it. A request that finds no idle connection waits for one while the pool grows
                up to --max-connections; beyond --max-inflight outstanding it is dropped and counted. A request never
                sent (dropped, or no connection for it) counts as rejected and has no latency: the percentiles are
                those of sent requests only.
                Closed loop (no --rate): each of --connections keeps one request in flight, for maximum throughput.

                --duration includes --warmup: requests intended in [warmup, duration) make the summary; all appear
                in the time series. After --duration, outstanding requests get --drain to finish.

                Writes summary.csv and timeseries.csv (the simulator's columns, mode = live), run.json and
                latency.hgrm / service.hgrm (HdrHistogram percentile distributions in ms) to --out.
                The run is flagged (run.json "valid": false, a warning, exit 1 with --strict) when the send lag's
                p99 exceeds --lag-threshold, fewer connections than --connections opened, or requests were dropped.

                The URL is parsed as RFC 3986 says: its path and query are percent-encoded where needed, a #fragment
                is dropped, control characters and user:password@ are refused; only http:// is supported. Durations
                obey the scenario file's limits (--duration in [1ns, 8760h]; --window in [1ms, 24h] and at most
                10,000,000 windows).

                Exit codes: 0, 1 flagged run with --strict, 64 usage error (including an output folder that cannot
                be written, found before the run), 70 internal error.
                """
        )

        @Argument(help: "The target, http://HOST[:PORT][/PATH].") var url: String
        @Option(parsing: .unconditional, help: "Requests per second (open loop); omit for closed loop.")
        var rate: Double?
        @Option(help: "Arrival spacing in open loop: constant or poisson.") var arrival = "constant"
        @Option(
            parsing: .unconditional,
            help:
                "Rate schedule instead of --rate: AT:RATE points, comma-separated; '~' after a rate ramps to the next point (e.g. 0s:100~,10s:1000,20s:200)."
        ) var schedule: String?
        @Option(parsing: .unconditional, help: "Connections opened at the start.") var connections = 16
        @Option(
            name: .customLong("max-connections"),
            parsing: .unconditional,
            help: "Pool cap (open loop; default 1024, closed: --connections)."
        )
        var maxConnections: Int?
        @Option(parsing: .unconditional, help: "Event-loop threads.") var threads = 1
        @Option(parsing: .unconditional, help: "Length of the run, warm-up included.") var duration = "10s"
        @Option(parsing: .unconditional, help: "Leading span left out of the summary.") var warmup = "0s"
        @Option(parsing: .unconditional, help: "Time allowed after --duration for outstanding requests.")
        var drain = "5s"
        @Option(
            parsing: .unconditional,
            help: "A request unanswered this long after its intended time is a timeout."
        ) var timeout = "5s"
        @Option(
            name: .customLong("max-inflight"),
            parsing: .unconditional,
            help: "Most requests outstanding before arrivals are dropped."
        )
        var maxInflight = 100_000
        @Option(parsing: .unconditional, help: "Time-series window.") var window = "1s"
        @Option(parsing: .unconditional, help: "Seed of Poisson arrivals.") var seed: UInt64 = 1
        @Option(
            name: .customLong("lag-threshold"),
            parsing: .unconditional,
            help: "Flag the run when the send-lag p99 exceeds this."
        )
        var lagThreshold = "1ms"
        @Option(help: "Output folder.") var out = "results/load"
        @Option(
            parsing: .unconditional,
            help: ArgumentHelp(
                "Send only shard I of N of the arrival plan (open loop; I from 0 to N-1), for `meshsim merge`.",
                valueName: "I/N"
            )
        )
        var shard: String?
        @Option(
            name: .customLong("start-at"),
            parsing: .unconditional,
            help: ArgumentHelp(
                "Start the schedule at this wall-clock time: Unix seconds, or UTC as 2026-11-27T19:30:00Z (so shards begin together).",
                valueName: "TIME"
            )
        )
        var startAt: String?
        @Flag(help: "No live line per window.") var quiet = false
        @Flag(help: "Exit 1 when the run is flagged.") var strict = false

        func validate() throws {
            if let rate, !(rate > 0 && rate <= 10_000_000) {
                throw ValidationError("--rate must be in (0, 10000000], got \(rate)")
            }
            if connections < 1 || connections > 1_000_000 {
                throw ValidationError("--connections must be in 1...1000000, got \(connections)")
            }
            if let maxConnections, maxConnections < 1 || maxConnections > 1_000_000 {
                throw ValidationError("--max-connections must be in 1...1000000, got \(maxConnections)")
            }
            if threads < 1 || threads > 256 { throw ValidationError("--threads must be in 1...256, got \(threads)") }
            if maxInflight < 1 || maxInflight > 100_000_000 {
                throw ValidationError("--max-inflight must be in 1...100000000, got \(maxInflight)")
            }
            if !["constant", "poisson"].contains(arrival) {
                throw ValidationError("--arrival must be constant or poisson, got \(arrival)")
            }
            if schedule != nil && rate != nil { throw ValidationError("give --rate or --schedule, not both") }
            if let shard, Shard(parsing: shard) == nil {
                throw ValidationError(
                    "--shard \(shard): expected I/N, a shard number I from 0 to N-1 and a count N from 1 to "
                        + "\(Shard.maxCount) (e.g. 0/4)"
                )
            }
            do {
                _ = try LoadConfiguration.parseURL(url)
            } catch let error as LiveError {
                throw ValidationError(error.description)
            }
            _ = try makeConfiguration()
        }

        /// Parses `--schedule`.
        static func parseSchedule(_ text: String) throws -> [RatePoint] {
            var points: [RatePoint] = []
            for part in text.split(separator: ",") {
                let pieces = part.split(separator: ":", maxSplits: 1)
                guard pieces.count == 2 else { throw ValidationError("--schedule: expected AT:RATE, got \(part)") }
                var rateText = String(pieces[1])
                let ramp = rateText.hasSuffix("~")
                if ramp { rateText.removeLast() }
                guard let rate = Double(rateText), rate >= 0, rate <= 10_000_000 else {
                    throw ValidationError("--schedule: \(pieces[1]) is not a rate in [0, 10000000]")
                }
                let at = try parseDuration(String(pieces[0]), flag: "--schedule", allowZero: true)
                points.append(RatePoint(at: SimDuration(nanoseconds: at), rate: rate, ramp: ramp))
            }
            guard !points.isEmpty else { throw ValidationError("--schedule is empty") }
            for i in 1..<max(points.count, 1) where points[i].at <= points[i - 1].at {
                throw ValidationError("--schedule: times must increase")
            }
            return points
        }

        func makeConfiguration() throws -> LoadConfiguration {
            let (host, port, path) = try LoadConfiguration.parseURL(url)
            let mode: LoadConfiguration.Mode
            let process = ArrivalProcess(rawValue: arrival) ?? .constant
            if let schedule {
                mode = .open(ArrivalSchedule(process: process, points: try Self.parseSchedule(schedule)))
            } else if let rate {
                mode = .open(ArrivalSchedule(process: process, rate: rate))
            } else {
                mode = .closed
            }
            var configuration = LoadConfiguration(host: host, port: port, mode: mode)
            configuration.path = path
            configuration.connections = connections
            configuration.maxConnections = maxConnections ?? (mode == .closed ? connections : max(1024, connections))
            configuration.threads = threads
            configuration.duration = try parseDuration(duration, flag: "--duration")
            configuration.warmup = try parseDuration(warmup, flag: "--warmup", allowZero: true)
            configuration.drain = try parseDuration(drain, flag: "--drain", allowZero: true)
            configuration.timeout = try parseDuration(timeout, flag: "--timeout")
            configuration.maxInFlight = maxInflight
            configuration.window = try parseDuration(window, flag: "--window")
            configuration.seed = seed
            configuration.lagThreshold = try parseDuration(lagThreshold, flag: "--lag-threshold")
            if let shard = shard.flatMap(Shard.init(parsing:)) {
                configuration.shardIndex = shard.index
                configuration.shardCount = shard.count
            }
            if let startAt { configuration.startAt = try Self.parseStart(startAt) }
            do {
                try configuration.validate()
            } catch let error as LiveError {
                throw ValidationError(error.description)
            }
            return configuration
        }

        func run() async throws {
            let configuration = try makeConfiguration()
            try prepareOutputFolder(out)
            raiseFileLimit()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            let generator = LoadGenerator(configuration: configuration, group: group)
            let quiet = self.quiet
            let width = configuration.window
            // A shard keeps its windows, histograms and all, for `meshsim merge`: written as they complete.
            let log: LoadWindowLog?
            do {
                log = configuration.shardCount > 1 ? try LoadWindowLog(path: out + "/windows.jsonl") : nil
            } catch {
                printError("error: cannot write \(out)/windows.jsonl: \(error)")
                throw Exit.internalError
            }
            let result: LoadResult
            do {
                result = try await generator.run(onWindow: { window in
                    log?.append(window)
                    if !quiet { print(LoadReport.liveLine(window, width: width)) }
                })
            } catch let error as LiveError {
                printError("error: \(error)")
                try? await group.shutdownGracefully()
                throw liveExitCode(for: error)
            }
            try? await group.shutdownGracefully()
            let run = LiveRun(
                scenario: configuration.scenario,
                variant: configuration.variant,
                seed: seed,
                result: result
            )
            do {
                try LoadReport.write([run], to: out, version: meshsimVersion)
                if let log {
                    // shard.json last: a shard folder without it did not finish.
                    let record = LoadShardRecord(
                        result: result,
                        arguments: Self.ownArguments(),
                        version: meshsimVersion,
                        windows: try log.close()
                    )
                    let encoder = JSONEncoder()
                    encoder.keyEncodingStrategy = .convertToSnakeCase
                    encoder.outputFormatting = [.sortedKeys]
                    try encoder.encode(record).write(to: URL(fileURLWithPath: out + "/shard.json"), options: .atomic)
                }
            } catch {
                printError("error: cannot write the reports to \(out): \(error.localizedDescription)")
                throw Exit.internalError
            }
            printSummary(run, out: out)
            if strict && !result.flags.isEmpty { throw ExitCode(1) }
        }

        /// Reads `--start-at`: Unix seconds, or an RFC 3339 UTC time; at most a day ahead.
        static func parseStart(_ text: String) throws -> Double {
            var seconds = Double(text)
            if seconds == nil {
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime]
                var date = formatter.date(from: text)
                if date == nil {
                    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                    date = formatter.date(from: text)
                }
                seconds = date?.timeIntervalSince1970
            }
            guard let seconds, seconds.isFinite, seconds > 0 else {
                throw ValidationError(
                    "--start-at \(text): expected Unix seconds (e.g. 1796000000) or a UTC time (e.g. 2026-11-27T19:30:00Z)"
                )
            }
            if seconds > Date().timeIntervalSince1970 + 86_400 {
                throw ValidationError("--start-at \(text) is more than a day ahead")
            }
            return seconds
        }

        /// The arguments this `load` was given (after the subcommand), for a shard's record.
        static func ownArguments() -> [String] {
            let all = Array(CommandLine.arguments.dropFirst())
            guard let at = all.firstIndex(of: "load") else { return all }
            return Array(all[(at + 1)...])
        }
    }

    struct Live: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Run a scenario on real sockets: emulated backends behind meshsim proxy, nginx or HAProxy.",
            discussion: """
                Starts the scenario's backends (the replicas of the service its one client calls), starts the proxy
                on 127.0.0.1:--proxy-port: meshsim proxy (the default; one event loop in this process) with the
                client's whole call policy on the simulator's own call edge, or nginx / HAProxy configured from the
                client's balancer (nginx: round_robin, least_conn, random two least_conn; HAProxy: roundrobin,
                leastconn, random(2)), timeout and retries. A policy the chosen proxy cannot carry is refused with
                its key path (exit 64). It drives the client's load with the scenario's faults in wall time, stops
                everything it started, and writes summary.csv, timeseries.csv (mode = live), run.json and the .hgrm
                files, one row per variant × seed, to --out (default results/<scenario>-<proxy>/); with meshsim
                proxy, each run's proxy metrics too (metrics.prom). The files are rewritten as each run finishes,
                so SIGINT or SIGTERM keeps the finished runs (the message says which).

                Exit codes: 0, 64 usage error (a port outside 1...65535, an output folder that cannot be written,
                found before any work) or a scenario that cannot run live, 65 bad scenario, 69 proxy missing or a
                port in use (the message names the process holding it), 70 internal error, 130 interrupted.
                """
        )

        @Argument(help: "The scenario file (YAML).") var scenario: String
        @Option(help: "The proxy: meshsim (default), nginx or haproxy.") var proxy = "meshsim"
        @Option(help: "Run only these variants (repeatable).") var variant: [String] = []
        @Option(parsing: .unconditional, help: "Replications per variant (default 1).") var seeds = 1
        @Option(parsing: .unconditional, help: "Override the scenario's duration.") var duration: String?
        @Option(name: .customLong("backend-port"), parsing: .unconditional, help: "First backend port.")
        var backendPort = 19001
        @Option(name: .customLong("proxy-port"), parsing: .unconditional, help: "The proxy's port.")
        var proxyPort = 18080
        @Option(parsing: .unconditional, help: "Event-loop threads for the generator and for the backends.")
        var threads = 1
        @Option(help: "Output folder.") var out: String?
        @Option(
            name: .customLong("max-requests-per-connection"),
            parsing: .unconditional,
            help: """
                The backends close a connection after this many requests, as nginx's keepalive_requests \
                (default 0: never; 1 makes the proxy open a connection, and with mutual TLS do a handshake, per \
                request).
                """
        ) var maxRequestsPerConnection = 0
        @Flag(help: "No live line per window.") var quiet = false

        func validate() throws {
            guard ProxyKind(rawValue: proxy) != nil else {
                throw ValidationError("--proxy must be meshsim, nginx or haproxy, got \(proxy)")
            }
            if !(1...100).contains(seeds) { throw ValidationError("--seeds must be in 1...100, got \(seeds)") }
            if threads < 1 || threads > 256 { throw ValidationError("--threads must be in 1...256, got \(threads)") }
            if maxRequestsPerConnection < 0 {
                throw ValidationError("--max-requests-per-connection must be ≥ 0, got \(maxRequestsPerConnection)")
            }
            try checkPorts(backendPort, flag: "--backend-port")
            try checkPorts(proxyPort, flag: "--proxy-port")
            if let duration { _ = try parseDuration(duration, flag: "--duration") }
        }

        func run() async throws {
            let kind = ProxyKind(rawValue: proxy)!
            raiseFileLimit()
            stopProxiesOnSignal()
            var loaded = try loadScenario(scenario, variants: variant)
            if let duration {
                loaded = loaded.withDuration(SimDuration(nanoseconds: try parseDuration(duration, flag: "--duration")))
            }
            let directory = out ?? "results/\(loaded.name)-\(kind.rawValue)"
            try prepareOutputFolder(directory)
            liveProgress.withLock { $0 = LiveProgress(directory: directory, kept: []) }
            let namePerRun = loaded.variants.count * seeds > 1
            var runs: [LiveRun] = []
            do {
                if kind != .meshsim { _ = try ProxyProcess.binary(for: kind) }
                // Every variant must be able to run live, with a valid load, before the first one starts.
                for variant in loaded.variants {
                    let plan = try LivePlan(
                        spec: variant.spec,
                        seed: loaded.seed,
                        backendPort: backendPort,
                        proxyPort: proxyPort,
                        threads: threads
                    )
                    do {
                        try plan.load.validate()
                    } catch let error as LiveError {
                        throw LiveError.invalid("variant \(variant.name): \(error)")
                    }
                    let refused = LivePlan.refusals(for: kind, spec: variant.spec)
                    if !refused.isEmpty {
                        throw LiveError.invalid(
                            "variant \(variant.name): "
                                + refused.joined(separator: "; ")
                                + " (remove the keys, or compare them by simulation)"
                        )
                    }
                }
                for variant in loaded.variants {
                    for i in 0..<seeds {
                        let seed = loaded.seed &+ UInt64(i)
                        var planned = try LivePlan(
                            spec: variant.spec,
                            seed: seed,
                            backendPort: backendPort,
                            proxyPort: proxyPort,
                            threads: threads
                        )
                        planned.backends.maxRequestsPerConnection = maxRequestsPerConnection
                        let plan = planned
                        if !quiet { print("\(loaded.name) / \(variant.name) / seed \(seed) via \(kind.rawValue)") }
                        var result = try await LiveRunner.run(
                            plan: plan,
                            proxy: kind,
                            proxyPort: proxyPort,
                            directory: directory + "/\(kind.rawValue)/\(variant.name)-\(seed)",
                            threads: threads
                        ) { window in
                            if !quiet { print("  " + LoadReport.liveLine(window, width: plan.load.window)) }
                        }
                        result.configuration.variant = variant.name
                        runs.append(LiveRun(scenario: loaded.name, variant: variant.name, seed: seed, result: result))
                        // Keep what has finished: an interruption later loses only the run in progress.
                        let finished = runs
                        let written: Result<Void, any Error> = liveProgress.withLock { progress in
                            let outcome = Result {
                                try LoadReport.write(
                                    finished,
                                    to: directory,
                                    version: meshsimVersion,
                                    namePerRun: namePerRun
                                )
                            }
                            if case .success = outcome { progress.kept.append("\(variant.name) seed \(seed)") }
                            return outcome
                        }
                        if case .failure(let error) = written {
                            printError("error: cannot write the reports to \(directory): \(error.localizedDescription)")
                            throw Exit.internalError
                        }
                    }
                }
            } catch let error as LiveError {
                printError("\(scenario): error: \(error)")
                throw liveExitCode(for: error)
            }
            for run in runs { printSummary(run, out: directory) }
        }
    }
}

/// Prints the end-of-run summary of a live run, and its self-check warnings.
func printSummary(_ run: LiveRun, out: String) {
    print(LoadReport.summaryLine(run) + " → \(out)/")
    for flag in run.result.flags { printError("warning: \(flag)") }
}
