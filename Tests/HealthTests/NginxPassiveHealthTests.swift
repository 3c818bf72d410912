import Health
import SimCore
import Testing

@Suite("nginx passive health")
struct NginxPassiveHealthTests {
    @Test("defaults: max_fails=1, fail_timeout=10s; one error makes the server unavailable for 10 s")
    func defaults() throws {
        let configuration = try NginxPassiveHealthConfiguration()
        #expect(configuration.maxFails == 1)
        #expect(configuration.failTimeout == .seconds(10))
        var health = try NginxPassiveHealthStateMachine(hostCount: 3, configuration: configuration)
        #expect(health.record(host: 1, result: .gatewayFailure, at: t(5)) == t(15))
        #expect(!health.isUsable(host: 1, at: t(5)))
        #expect(!health.isUsable(host: 1, at: SimInstant(nanoseconds: t(15).nanoseconds - 1)))
        #expect(health.isUsable(host: 1, at: t(15)))
        #expect(health.isUsable(host: 0, at: t(5)))
    }

    @Test("max_fails failures within fail_timeout trip; the same failures spread wider do not")
    func window() throws {
        let configuration = try NginxPassiveHealthConfiguration(maxFails: 3, failTimeout: .seconds(10))
        var health = try NginxPassiveHealthStateMachine(hostCount: 2, configuration: configuration)
        #expect(health.record(host: 0, result: .gatewayFailure, at: t(0)) == nil)
        #expect(health.record(host: 0, result: .gatewayFailure, at: t(6)) == nil)
        #expect(health.record(host: 0, result: .gatewayFailure, at: t(10)) == nil)  // the one at 0 is 10 s old
        #expect(health.isUsable(host: 0, at: t(10)))
        #expect(health.record(host: 0, result: .gatewayFailure, at: t(12)) == t(22))  // 6, 10, 12
        #expect(!health.isUsable(host: 0, at: t(21)))
        #expect(health.isUsable(host: 0, at: t(22)))
    }

    @Test("HTTP statuses count only when listed, and 403/404 never")
    func statuses() throws {
        let plain = try NginxPassiveHealthConfiguration()
        #expect(!plain.isFailure(.httpError(status: 500)))
        #expect(plain.isFailure(.gatewayFailure))
        let listed = try NginxPassiveHealthConfiguration(failureStatuses: [.http500, .http503, .http429])
        #expect(listed.isFailure(.httpError(status: 500)))
        #expect(listed.isFailure(.httpError(status: 429)))
        #expect(!listed.isFailure(.httpError(status: 502)))
        #expect(!listed.isFailure(.httpError(status: 404)))
        #expect(!listed.isFailure(.httpError(status: 403)))
        #expect(!listed.isFailure(.success))
    }

    @Test("max_fails=0 disables the accounting; a single-server group never goes down")
    func disabledAndSingle() throws {
        var off = try NginxPassiveHealthStateMachine(
            hostCount: 2,
            configuration: NginxPassiveHealthConfiguration(maxFails: 0)
        )
        for i in 0..<10 { #expect(off.record(host: 0, result: .gatewayFailure, at: t(Int64(i))) == nil) }
        #expect(off.isUsable(host: 0, at: t(10)))
        var single = try NginxPassiveHealthStateMachine(hostCount: 1, configuration: NginxPassiveHealthConfiguration())
        #expect(single.record(host: 0, result: .gatewayFailure, at: t(0)) == nil)
        #expect(single.isUsable(host: 0, at: t(0)))
        #expect(!single.isUsable(host: 1, at: t(0)))
    }

    @Test("round-robin module variant: fails clear only after a pick past fail_timeout succeeds")
    func roundRobinModule() throws {
        let configuration = try NginxPassiveHealthConfiguration(
            maxFails: 2,
            failTimeout: .seconds(10),
            variant: .roundRobinModule
        )
        var health = try NginxPassiveHealthStateMachine(hostCount: 2, configuration: configuration)
        #expect(health.record(host: 0, result: .gatewayFailure, at: t(0)) == nil)
        // A success picked within fail_timeout of the failure does not clear it…
        health.selected(host: 0, at: t(3))
        #expect(health.record(host: 0, result: .success, at: t(3)) == nil)
        #expect(health.record(host: 0, result: .gatewayFailure, at: t(30)) == t(40) + .nanoseconds(1))
        #expect(!health.isUsable(host: 0, at: t(40)))
        #expect(health.isUsable(host: 0, at: t(40) + .nanoseconds(1)))
        // …but one picked later does.
        health.selected(host: 0, at: t(41))
        #expect(health.record(host: 0, result: .success, at: t(41)) == nil)
        #expect(health.record(host: 0, result: .gatewayFailure, at: t(42)) == nil)
        #expect(health.isUsable(host: 0, at: t(42)))
    }
}
