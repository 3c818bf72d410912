import Health
import SimCore
import Testing

@Suite("Envoy outlier detection properties")
struct OutlierPropertyTests {
    /// The most hosts the rule lets be ejected at once out of `hosts`.
    static func ejectionBound(_ configuration: OutlierDetectionConfiguration, hosts: Int) -> Int {
        let scaled = configuration.maxEjectionPercent * hosts
        let bound: Int
        switch configuration.ejectionPercentRule {
        case .current: bound = scaled / 100  // 100 × (a + 1) / n ≤ max ⇒ a + 1 ≤ ⌊max × n / 100⌋
        case .legacy: bound = (scaled + 99) / 100  // 100 × a / n < max before each ejection ⇒ ⌈max × n / 100⌉
        }
        return configuration.alwaysEjectOneHost ? max(1, bound) : bound
    }

    static func randomConfiguration(_ rng: inout SplitMix64) throws -> OutlierDetectionConfiguration {
        let percents = [0, 10, 20, 34, 50, 100]
        let enforcing = [0, 30, 100]
        return try OutlierDetectionConfiguration(
            interval: .seconds(Int64(1 + rng.below(10))),
            baseEjectionTime: .seconds(Int64(1 + rng.below(30))),
            maxEjectionTimeJitter: rng.below(2) == 0 ? .zero : .milliseconds(Int64(rng.below(5_000))),
            maxEjectionPercent: percents[rng.below(percents.count)],
            alwaysEjectOneHost: rng.below(2) == 0,
            ejectionPercentRule: rng.below(2) == 0 ? .current : .legacy,
            ejectionTimeBackoff: rng.below(4) == 0 ? .numberOfEjections : .decaying,
            consecutive5xx: 1 + rng.below(5),
            enforcingConsecutive5xx: enforcing[rng.below(enforcing.count)],
            consecutiveGatewayFailure: 1 + rng.below(5),
            enforcingConsecutiveGatewayFailure: enforcing[rng.below(enforcing.count)],
            splitExternalLocalOriginErrors: rng.below(3) == 0,
            successRateMinimumHosts: 1 + rng.below(4),
            successRateRequestVolume: 1 + rng.below(20),
            failurePercentageThreshold: 30 + rng.below(70),
            enforcingFailurePercentage: enforcing[rng.below(enforcing.count)],
            failurePercentageMinimumHosts: 1 + rng.below(4),
            failurePercentageRequestVolume: 1 + rng.below(20)
        )
    }

    @Test("over 1,000 seeds: no host is usable before its ejection ends, and ejections respect the bound")
    func ejectionInvariants() throws {
        var ejections = 0
        var unejections = 0
        var overflows = 0
        var boundReached = 0
        for seed in 0..<1_000 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            let configuration = try Self.randomConfiguration(&rng)
            let hosts = 1 + rng.below(12)
            let bound = Self.ejectionBound(configuration, hosts: hosts)
            var detector = try OutlierDetectorStateMachine(hostCount: hosts, configuration: configuration)
            // Each host has its own failure probability (in percent), so some become outliers.
            let failureOdds = (0..<hosts).map { _ in [0, 5, 50, 95][rng.below(4)] }
            var ejectedUntil = [SimInstant?](repeating: nil, count: hosts)
            var now = SimInstant.zero
            var nextSweep = SimInstant.zero + configuration.interval
            var events: [OutlierEvent] = []
            events.reserveCapacity(hosts * 4)

            func check(_ context: @autoclosure () -> String) {
                var unusable = 0
                for host in 0..<hosts {
                    let usable = detector.isUsable(host: host, at: now)
                    if !usable { unusable += 1 }
                    if let until = ejectedUntil[host], now < until, usable {
                        Issue.record("seed \(seed): host \(host) usable at \(now) before \(until) (\(context()))")
                    }
                }
                if unusable == bound, bound > 0 { boundReached += 1 }
                if unusable != detector.ejectedHostCount || unusable > bound {
                    Issue.record("seed \(seed): \(unusable) ejected of \(hosts), bound \(bound) (\(context()))")
                }
            }

            for _ in 0..<400 {
                now = now + .milliseconds(Int64(rng.below(700)))
                while nextSweep <= now {
                    events.removeAll(keepingCapacity: true)
                    detector.sweep(at: nextSweep, using: &rng, into: &events)
                    for event in events {
                        switch event {
                        case .ejected(let host, _, let until):
                            #expect(until >= nextSweep + configuration.baseEjectionTime)
                            ejectedUntil[host] = until
                            ejections += 1
                        case .unejected(let host):
                            let until = try #require(ejectedUntil[host])
                            #expect(nextSweep >= until, "seed \(seed): unejected before its time")
                            ejectedUntil[host] = nil
                            unejections += 1
                        case .overflow:
                            overflows += 1
                        case .notEnforced:
                            break
                        }
                    }
                    let swept = now
                    now = nextSweep
                    check("after sweep")
                    now = swept
                    nextSweep = nextSweep + configuration.interval
                }
                let host = rng.below(hosts)
                let result: RequestResult
                if rng.below(100) < failureOdds[host] {
                    result = [.httpError(status: 500), .httpError(status: 503), .gatewayFailure][rng.below(3)]
                } else {
                    result = rng.below(10) == 0 ? .httpError(status: 404) : .success
                }
                if case .ejected(let ejected, _, let until)? =
                    detector.record(host: host, result: result, at: now, using: &rng)
                {
                    #expect(ejected == host)
                    #expect(ejectedUntil[host] == nil, "seed \(seed): ejected twice")
                    ejectedUntil[host] = until
                    ejections += 1
                }
                check("after request")
            }
        }
        // The property is not vacuous: hosts were ejected, returned, refused, and the bound was reached.
        #expect(ejections > 2_000)
        #expect(unejections > 1_000)
        #expect(overflows > 100)
        #expect(boundReached > 1_000)
    }

    @Test("over 1,000 seeds: nginx never offers a server before the end it reported")
    func nginxInvariant() throws {
        for seed in 0..<1_000 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            let variant: NginxPassiveHealthConfiguration.Variant = rng.below(2) == 0 ? .documented : .roundRobinModule
            let configuration = try NginxPassiveHealthConfiguration(
                maxFails: rng.below(4),
                failTimeout: .milliseconds(Int64(1 + rng.below(5_000))),
                failureStatuses: [.http500, .http503],
                variant: variant
            )
            let hosts = 1 + rng.below(6)
            var health = try NginxPassiveHealthStateMachine(hostCount: hosts, configuration: configuration)
            var unavailableUntil = [SimInstant](repeating: .zero, count: hosts)
            var now = SimInstant.zero
            for _ in 0..<300 {
                now = now + .milliseconds(Int64(rng.below(400)))
                let host = rng.below(hosts)
                if health.isUsable(host: host, at: now) { health.selected(host: host, at: now) }
                let result: RequestResult = [.success, .gatewayFailure, .httpError(status: 500)][rng.below(3)]
                if let until = health.record(host: host, result: result, at: now) {
                    #expect(until > now)
                    unavailableUntil[host] = max(unavailableUntil[host], until)
                }
                for h in 0..<hosts where now < unavailableUntil[h] {
                    #expect(!health.isUsable(host: h, at: now), "seed \(seed): server \(h) usable too early")
                }
            }
        }
    }
}
