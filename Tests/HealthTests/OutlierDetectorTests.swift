import Health
import SimCore
import Testing

@Suite("Envoy outlier detection")
struct OutlierDetectorTests {
    /// Records `count` copies of `result` on `host` at `now`, returning the non-nil events.
    static func record(
        _ detector: inout OutlierDetectorStateMachine,
        host: Int,
        _ result: RequestResult,
        times count: Int,
        at now: SimInstant,
        rng: inout some RandomNumberGenerator
    ) -> [OutlierEvent] {
        (0..<count).compactMap { _ in detector.record(host: host, result: result, at: now, using: &rng) }
    }

    @Test("Envoy's worked example: {50, 100, 100, 100, 100} with factor 1900 gives threshold 52")
    func successRateThresholdFormula() throws {
        let threshold = try #require(
            OutlierDetectorStateMachine.successRateThreshold(rates: [50, 100, 100, 100, 100], stdevFactor: 1900)
        )
        #expect(abs(threshold - 52) < 1e-9)
        #expect(OutlierDetectorStateMachine.successRateThreshold(rates: [Double](), stdevFactor: 1900) == nil)
    }

    @Test("the success-rate detector ejects the host at 50% among four at 100% (threshold 52)")
    func successRateEjection() throws {
        var rng = SplitMix64(seed: 1)
        var detector = try OutlierDetectorStateMachine(
            hostCount: 5,
            configuration: OutlierDetectionConfiguration(maxEjectionPercent: 20)
        )
        for host in 0..<5 {
            for i in 0..<100 {
                // Host 0 fails every other request, so the consecutive-5xx detector stays quiet.
                let fail = host == 0 && i % 2 == 0
                let result: RequestResult = fail ? .httpError(status: 500) : .success
                #expect(detector.record(host: host, result: result, at: t(1), using: &rng) == nil)
            }
        }
        let events = detector.sweep(at: t(10), using: &rng)
        #expect(events == [.ejected(host: 0, reason: .successRate, until: t(40))])
        let threshold = try #require(detector.lastSuccessRateThreshold)
        #expect(abs(threshold - 52) < 1e-9)
        #expect(detector.successRate(host: 0) == 50)
        #expect(detector.successRate(host: 1) == 100)
        #expect(!detector.isUsable(host: 0, at: t(10)))
        #expect((1..<5).allSatisfy { detector.isUsable(host: $0, at: t(10)) })
        #expect(detector.statistics.enforced[.successRate] == 1)
        // The next interval had no traffic: nothing more happens, and host 0 stays out until its time is up.
        #expect(detector.sweep(at: t(20), using: &rng).isEmpty)
        #expect(detector.sweep(at: t(30), using: &rng).isEmpty)
        #expect(detector.sweep(at: t(40), using: &rng) == [.unejected(host: 0)])
    }

    @Test("success rate needs success_rate_minimum_hosts hosts with success_rate_request_volume requests")
    func successRateMinimums() throws {
        var rng = SplitMix64(seed: 2)
        var detector = try OutlierDetectorStateMachine(
            hostCount: 5,
            configuration: OutlierDetectionConfiguration(maxEjectionPercent: 100)
        )
        for host in 0..<5 {
            // Host 4 has only 99 requests: four valid hosts are fewer than the minimum of five.
            for i in 0..<(host == 4 ? 99 : 100) {
                let fail = host == 0 && i % 2 == 0
                let result: RequestResult = fail ? .httpError(status: 503) : .success
                _ = detector.record(host: host, result: result, at: t(1), using: &rng)
            }
        }
        #expect(detector.sweep(at: t(10), using: &rng).isEmpty)
        #expect(detector.lastSuccessRateThreshold == nil)
        // The next interval has no traffic at all: still nothing.
        #expect(detector.sweep(at: t(20), using: &rng).isEmpty)
    }

    @Test("with the default max_ejection_percent of 10, one host of five cannot be ejected (overflow)")
    func successRateOverflow() throws {
        var rng = SplitMix64(seed: 3)
        var detector = try OutlierDetectorStateMachine(hostCount: 5, configuration: OutlierDetectionConfiguration())
        for host in 0..<5 {
            for i in 0..<100 {
                let fail = host == 0 && i % 2 == 0
                let result: RequestResult = fail ? .httpError(status: 500) : .success
                _ = detector.record(host: host, result: result, at: t(1), using: &rng)
            }
        }
        #expect(detector.sweep(at: t(10), using: &rng) == [.overflow(host: 0, reason: .successRate)])
        #expect(detector.statistics.overflow == 1)
        #expect(detector.statistics.detected[.successRate] == 1)
        #expect(detector.ejectedHostCount == 0)
    }

    @Test("five consecutive 5xx eject the host; a success in between resets the count")
    func consecutive5xx() throws {
        var rng = CountingRNG()
        var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: OutlierDetectionConfiguration())
        #expect(Self.record(&detector, host: 3, .httpError(status: 500), times: 4, at: t(1), rng: &rng).isEmpty)
        #expect(detector.record(host: 3, result: .success, at: t(1), using: &rng) == nil)
        #expect(Self.record(&detector, host: 3, .httpError(status: 500), times: 4, at: t(2), rng: &rng).isEmpty)
        #expect(detector.isUsable(host: 3, at: t(2)))
        let event = detector.record(host: 3, result: .httpError(status: 500), at: t(2), using: &rng)
        #expect(event == .ejected(host: 3, reason: .consecutive5xx, until: t(32)))
        #expect(!detector.isUsable(host: 3, at: t(2)))
        #expect(detector.ejectionEnd(host: 3) == t(32))
        #expect(detector.ejectedHostCount == 1)
        // Enforcement at 100 % and the gateway detector at 0 % draw nothing; no jitter draws either.
        #expect(rng.draws == 0)
        // Further failures on an ejected host request nothing.
        #expect(Self.record(&detector, host: 3, .httpError(status: 500), times: 10, at: t(3), rng: &rng).isEmpty)
        // A 4xx is not a 5xx.
        #expect(Self.record(&detector, host: 5, .httpError(status: 404), times: 10, at: t(3), rng: &rng).isEmpty)
    }

    @Test("consecutive gateway failures are detected but, by default, not enforced; the 5xx detector ejects")
    func gatewayDetectedNotEnforced() throws {
        var rng = SplitMix64(seed: 4)
        var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: OutlierDetectionConfiguration())
        let events = Self.record(&detector, host: 0, .gatewayFailure, times: 5, at: t(1), rng: &rng)
        #expect(events == [.ejected(host: 0, reason: .consecutive5xx, until: t(31))])
        #expect(detector.statistics.detected[.consecutiveGatewayFailure] == 1)
        #expect(detector.statistics.enforced[.consecutiveGatewayFailure] == 0)
        #expect(detector.statistics.enforced[.consecutive5xx] == 1)
    }

    @Test("a non-gateway 5xx resets the gateway counter but extends the 5xx one")
    func gatewayCounterReset() throws {
        var rng = SplitMix64(seed: 5)
        let configuration = try OutlierDetectionConfiguration(
            consecutive5xx: 10,
            enforcingConsecutiveGatewayFailure: 100
        )
        var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: configuration)
        #expect(Self.record(&detector, host: 1, .httpError(status: 503), times: 4, at: t(1), rng: &rng).isEmpty)
        #expect(detector.record(host: 1, result: .httpError(status: 500), at: t(1), using: &rng) == nil)
        #expect(Self.record(&detector, host: 1, .httpError(status: 502), times: 4, at: t(1), rng: &rng).isEmpty)
        let event = detector.record(host: 1, result: .httpError(status: 504), at: t(1), using: &rng)
        #expect(event == .ejected(host: 1, reason: .consecutiveGatewayFailure, until: t(31)))
    }

    @Test("ejection time grows 30 s, 60 s, 90 s with repeated ejections, and decays one step per healthy sweep")
    func ejectionBackoffAndDecay() throws {
        var rng = SplitMix64(seed: 6)
        var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: OutlierDetectionConfiguration())
        func failFive(at now: SimInstant) -> OutlierEvent? {
            Self.record(&detector, host: 0, .httpError(status: 500), times: 5, at: now, rng: &rng).last
        }
        #expect(failFive(at: t(0)) == .ejected(host: 0, reason: .consecutive5xx, until: t(30)))
        #expect(detector.sweep(at: t(10), using: &rng).isEmpty)
        #expect(detector.sweep(at: t(20), using: &rng).isEmpty)
        #expect(!detector.isUsable(host: 0, at: t(29)))
        #expect(detector.sweep(at: t(30), using: &rng) == [.unejected(host: 0)])
        #expect(detector.isUsable(host: 0, at: t(30)))
        #expect(detector.ejectionMultiplier(host: 0) == 1)

        #expect(failFive(at: t(30)) == .ejected(host: 0, reason: .consecutive5xx, until: t(90)))
        for second in stride(from: 40, through: 80, by: 10) {
            #expect(detector.sweep(at: t(Int64(second)), using: &rng).isEmpty)
        }
        #expect(detector.sweep(at: t(90), using: &rng) == [.unejected(host: 0)])
        #expect(failFive(at: t(90)) == .ejected(host: 0, reason: .consecutive5xx, until: t(180)))
        for second in stride(from: 100, through: 170, by: 10) {
            #expect(detector.sweep(at: t(Int64(second)), using: &rng).isEmpty)
        }
        #expect(detector.sweep(at: t(180), using: &rng) == [.unejected(host: 0)])
        // The sweep that unejects does not decay; each later sweep finding the host in service does.
        #expect(detector.ejectionMultiplier(host: 0) == 3)
        _ = detector.sweep(at: t(190), using: &rng)
        #expect(detector.ejectionMultiplier(host: 0) == 2)
        _ = detector.sweep(at: t(200), using: &rng)
        #expect(detector.ejectionMultiplier(host: 0) == 1)
        #expect(failFive(at: t(205)) == .ejected(host: 0, reason: .consecutive5xx, until: t(265)))
        // Many healthy sweeps bring it back to the base time, never below.
        #expect(detector.sweep(at: t(270), using: &rng) == [.unejected(host: 0)])
        for second in stride(from: 280, through: 400, by: 10) { _ = detector.sweep(at: t(Int64(second)), using: &rng) }
        #expect(detector.ejectionMultiplier(host: 0) == 0)
        #expect(failFive(at: t(401)) == .ejected(host: 0, reason: .consecutive5xx, until: t(431)))
    }

    @Test("the ejection time is capped by max_ejection_time (300 s by default)")
    func ejectionCap() throws {
        var rng = SplitMix64(seed: 7)
        var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: OutlierDetectionConfiguration())
        var now = t(0)
        var durations: [Int64] = []
        for _ in 0..<13 {
            let events = Self.record(&detector, host: 0, .httpError(status: 500), times: 5, at: now, rng: &rng)
            guard case .ejected(_, _, let until)? = events.last else {
                Issue.record("expected an ejection, got \(events)")
                return
            }
            durations.append((until - now).nanoseconds / 1_000_000_000)
            now = until
            #expect(detector.sweep(at: now, using: &rng) == [.unejected(host: 0)])
        }
        #expect(durations == [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300, 300])
        #expect(detector.ejectionMultiplier(host: 0) == 11)
    }

    @Test("the older back-off, base × number of ejections, neither decays nor caps")
    func numberOfEjectionsBackoff() throws {
        var rng = SplitMix64(seed: 8)
        let configuration = try OutlierDetectionConfiguration(ejectionTimeBackoff: .numberOfEjections)
        var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: configuration)
        var now = t(0)
        var durations: [Int64] = []
        for _ in 0..<12 {
            let events = Self.record(&detector, host: 0, .httpError(status: 500), times: 5, at: now, rng: &rng)
            guard case .ejected(_, _, let until)? = events.last else {
                Issue.record("expected an ejection")
                return
            }
            durations.append((until - now).nanoseconds / 1_000_000_000)
            _ = detector.sweep(at: until, using: &rng)
            // Ten healthy sweeps change nothing.
            for i in 1...10 { _ = detector.sweep(at: until + .seconds(10 * Int64(i)), using: &rng) }
            now = until + .seconds(100)
        }
        #expect(durations == [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 360])
    }

    @Test("max_ejection_percent: the current rule, the legacy rule and always_eject_one_host")
    func maxEjectionPercent() throws {
        var rng = SplitMix64(seed: 9)
        func ejectEveryHost(_ configuration: OutlierDetectionConfiguration, hosts: Int) throws -> Int {
            var detector = try OutlierDetectorStateMachine(hostCount: hosts, configuration: configuration)
            for host in 0..<hosts {
                _ = Self.record(&detector, host: host, .httpError(status: 500), times: 5, at: t(1), rng: &rng)
            }
            return detector.ejectedHostCount
        }
        // Current: 100 × (active + 1) / n ≤ max.
        #expect(try ejectEveryHost(OutlierDetectionConfiguration(), hosts: 10) == 1)
        #expect(try ejectEveryHost(OutlierDetectionConfiguration(), hosts: 9) == 0)
        #expect(try ejectEveryHost(OutlierDetectionConfiguration(), hosts: 20) == 2)
        #expect(try ejectEveryHost(OutlierDetectionConfiguration(maxEjectionPercent: 50), hosts: 7) == 3)
        #expect(try ejectEveryHost(OutlierDetectionConfiguration(maxEjectionPercent: 0), hosts: 7) == 0)
        #expect(try ejectEveryHost(OutlierDetectionConfiguration(maxEjectionPercent: 100), hosts: 7) == 7)
        // always_eject_one_host restores the first ejection.
        #expect(try ejectEveryHost(OutlierDetectionConfiguration(alwaysEjectOneHost: true), hosts: 9) == 1)
        #expect(try ejectEveryHost(OutlierDetectionConfiguration(alwaysEjectOneHost: true), hosts: 1) == 1)
        // Legacy: 100 × active / n < max, so the first host is always ejectable.
        let legacy = try OutlierDetectionConfiguration(ejectionPercentRule: .legacy)
        #expect(try ejectEveryHost(legacy, hosts: 9) == 1)
        #expect(try ejectEveryHost(legacy, hosts: 10) == 1)
        #expect(try ejectEveryHost(legacy, hosts: 11) == 2)
        let legacyZero = try OutlierDetectionConfiguration(maxEjectionPercent: 0, ejectionPercentRule: .legacy)
        #expect(try ejectEveryHost(legacyZero, hosts: 9) == 0)
    }

    @Test("an enforcing percentage between 0 and 100 is drawn from the caller's generator")
    func enforcingDraw() throws {
        var rng = SplitMix64(seed: 10)
        let configuration = try OutlierDetectionConfiguration(
            maxEjectionPercent: 100,
            enforcingConsecutive5xx: 30
        )
        var enforced = 0
        var notEnforced = 0
        for _ in 0..<2_000 {
            var detector = try OutlierDetectorStateMachine(hostCount: 1, configuration: configuration)
            switch Self.record(&detector, host: 0, .httpError(status: 500), times: 5, at: t(1), rng: &rng).last {
            case .ejected?: enforced += 1
            case .notEnforced?: notEnforced += 1
            default: Issue.record("unexpected event")
            }
        }
        #expect(enforced + notEnforced == 2_000)
        #expect(abs(Double(enforced) / 2_000 - 0.3) < 0.04)
        // Same seed, same decisions.
        func run(seed: UInt64) throws -> [OutlierEvent] {
            var rng = SplitMix64(seed: seed)
            var detector = try OutlierDetectorStateMachine(hostCount: 1, configuration: configuration)
            return (0..<50).flatMap { i in
                Self.record(&detector, host: 0, .httpError(status: 500), times: 5, at: t(Int64(i)), rng: &rng)
            }
        }
        #expect(try run(seed: 77) == run(seed: 77))
    }

    @Test("failure percentage ejects at or above the threshold when enforced")
    func failurePercentage() throws {
        var rng = SplitMix64(seed: 11)
        let configuration = try OutlierDetectionConfiguration(
            maxEjectionPercent: 100,
            consecutive5xx: 1_000,
            successRateRequestVolume: 200,
            failurePercentageThreshold: 85,
            enforcingFailurePercentage: 100
        )
        var detector = try OutlierDetectorStateMachine(hostCount: 5, configuration: configuration)
        // 100 requests each: enough for failure percentage (volume 50), not for success rate (volume 200 here).
        // Host 2 fails 85 % (at the threshold), host 3 fails 84 %.
        let failures = [0, 0, 85, 84, 0]
        for host in 0..<5 {
            for i in 0..<100 {
                let result: RequestResult = i < failures[host] ? .httpError(status: 500) : .success
                _ = detector.record(host: host, result: result, at: t(1), using: &rng)
            }
        }
        let events = detector.sweep(at: t(10), using: &rng)
        #expect(events == [.ejected(host: 2, reason: .failurePercentage, until: t(40))])
        #expect(detector.statistics.detected[.failurePercentage] == 1)
        #expect(detector.lastSuccessRateThreshold == nil)
    }

    @Test("failure percentage is detected but not enforced by default; 4xx responses count as successes")
    func failurePercentageDefault() throws {
        var rng = SplitMix64(seed: 12)
        let configuration = try OutlierDetectionConfiguration(maxEjectionPercent: 100, consecutive5xx: 1_000)
        var detector = try OutlierDetectorStateMachine(hostCount: 5, configuration: configuration)
        for host in 0..<5 {
            for i in 0..<60 {
                let result: RequestResult
                switch host {
                case 3: result = i % 10 != 0 ? .httpError(status: 429) : .success  // 4xx: successes for Envoy
                case 4: result = i % 10 != 0 ? .httpError(status: 500) : .success  // 90 % failures
                default: result = .success
                }
                _ = detector.record(host: host, result: result, at: t(1), using: &rng)
            }
        }
        #expect(detector.sweep(at: t(10), using: &rng) == [.notEnforced(host: 4, reason: .failurePercentage)])
        #expect(detector.ejectedHostCount == 0)
    }

    @Test("max_ejection_time_jitter adds a uniform draw in [0, jitter]")
    func jitter() throws {
        var rng = SplitMix64(seed: 13)
        let configuration = try OutlierDetectionConfiguration(maxEjectionTimeJitter: .seconds(5))
        var seen = Set<Int64>()
        for _ in 0..<500 {
            var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: configuration)
            guard
                case .ejected(_, _, let until)? =
                    Self.record(&detector, host: 0, .httpError(status: 500), times: 5, at: t(0), rng: &rng).last
            else {
                Issue.record("expected an ejection")
                return
            }
            #expect(until >= t(30) && until <= t(35))
            seen.insert(until.nanoseconds / 1_000_000_000)
        }
        #expect(seen.count >= 5)
    }

    @Test("a passing active health check unejects and clears the counters, unless disabled")
    func activeHealthCheckUneject() throws {
        var rng = SplitMix64(seed: 14)
        var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: OutlierDetectionConfiguration())
        _ = Self.record(&detector, host: 0, .httpError(status: 500), times: 5, at: t(0), rng: &rng)
        #expect(detector.activeHealthCheckPassed(host: 0, at: t(5)) == .unejected(host: 0))
        #expect(detector.isUsable(host: 0, at: t(5)))
        #expect(detector.activeHealthCheckPassed(host: 0, at: t(6)) == nil)
        // Counters were cleared: four more failures do nothing.
        #expect(Self.record(&detector, host: 0, .httpError(status: 500), times: 4, at: t(7), rng: &rng).isEmpty)

        let off = try OutlierDetectionConfiguration(successfulActiveHealthCheckUnejectHost: false)
        var other = try OutlierDetectorStateMachine(hostCount: 10, configuration: off)
        _ = Self.record(&other, host: 0, .httpError(status: 500), times: 5, at: t(0), rng: &rng)
        #expect(other.activeHealthCheckPassed(host: 0, at: t(5)) == nil)
        #expect(!other.isUsable(host: 0, at: t(5)))
    }

    @Test("split local-origin errors: gateway failures feed only consecutive_local_origin_failure")
    func splitLocalOrigin() throws {
        var rng = SplitMix64(seed: 15)
        let configuration = try OutlierDetectionConfiguration(splitExternalLocalOriginErrors: true)
        var detector = try OutlierDetectorStateMachine(hostCount: 10, configuration: configuration)
        #expect(Self.record(&detector, host: 0, .gatewayFailure, times: 4, at: t(0), rng: &rng).isEmpty)
        // A 500 is an external 5xx, and also proves the connection worked: the local-origin count restarts.
        #expect(detector.record(host: 0, result: .httpError(status: 500), at: t(0), using: &rng) == nil)
        #expect(Self.record(&detector, host: 0, .gatewayFailure, times: 4, at: t(0), rng: &rng).isEmpty)
        let event = detector.record(host: 0, result: .gatewayFailure, at: t(0), using: &rng)
        #expect(event == .ejected(host: 0, reason: .consecutiveLocalOriginFailure, until: t(30)))
        #expect(detector.statistics.detected[.consecutive5xx] == 0)
    }

    @Test("host indices out of range are ignored, never trapped on")
    func outOfRange() throws {
        var rng = SplitMix64(seed: 16)
        var detector = try OutlierDetectorStateMachine(hostCount: 2, configuration: OutlierDetectionConfiguration())
        #expect(detector.record(host: 2, result: .gatewayFailure, at: t(0), using: &rng) == nil)
        #expect(detector.record(host: -1, result: .gatewayFailure, at: t(0), using: &rng) == nil)
        #expect(!detector.isUsable(host: 5, at: t(0)))
        #expect(detector.activeHealthCheckPassed(host: 9, at: t(0)) == nil)
        var empty = try OutlierDetectorStateMachine(hostCount: 0, configuration: OutlierDetectionConfiguration())
        #expect(empty.sweep(at: t(10), using: &rng).isEmpty)
    }
}
