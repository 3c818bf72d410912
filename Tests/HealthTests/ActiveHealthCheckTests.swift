import Health
import SimCore
import Testing

@Suite("Active health checks")
struct ActiveHealthCheckTests {
    static func configuration(initiallyHealthy: Bool = true) throws -> ActiveHealthCheckConfiguration {
        try ActiveHealthCheckConfiguration(
            interval: .seconds(5),
            timeout: .seconds(1),
            unhealthyThreshold: 3,
            healthyThreshold: 2,
            initiallyHealthy: initiallyHealthy
        )
    }

    @Test("unhealthy_threshold consecutive failures mark a host unhealthy; a pass in between resets the streak")
    func unhealthyThreshold() throws {
        var checker = try ActiveHealthCheckStateMachine(hostCount: 2, configuration: Self.configuration())
        #expect(checker.isUsable(host: 0, at: t(0)))
        #expect(checker.record(host: 0, check: .failed, at: t(1)) == nil)
        #expect(checker.record(host: 0, check: .timedOut, at: t(6)) == nil)
        #expect(checker.record(host: 0, check: .passed(responseTime: .milliseconds(10)), at: t(11)) == nil)
        #expect(checker.record(host: 0, check: .failed, at: t(16)) == nil)
        #expect(checker.record(host: 0, check: .failed, at: t(21)) == nil)
        #expect(checker.isUsable(host: 0, at: t(21)))
        #expect(checker.record(host: 0, check: .failed, at: t(26)) == .becameUnhealthy(host: 0))
        #expect(!checker.isUsable(host: 0, at: t(26)))
        #expect(checker.isUsable(host: 1, at: t(26)))
    }

    @Test("healthy_threshold consecutive passes bring a host back; a pass slower than the timeout is a failure")
    func healthyThresholdAndTimeout() throws {
        var checker = try ActiveHealthCheckStateMachine(
            hostCount: 1,
            configuration: Self.configuration(initiallyHealthy: false)
        )
        #expect(!checker.isUsable(host: 0, at: t(0)))
        #expect(checker.record(host: 0, check: .passed(responseTime: .milliseconds(999)), at: t(1)) == nil)
        #expect(checker.record(host: 0, check: .passed(responseTime: .milliseconds(1_001)), at: t(6)) == nil)
        #expect(checker.record(host: 0, check: .passed(responseTime: .seconds(1)), at: t(11)) == nil)
        #expect(checker.record(host: 0, check: .passed(responseTime: .zero), at: t(16)) == .becameHealthy(host: 0))
        #expect(checker.isUsable(host: 0, at: t(16)))
    }

    @Test("the next check is due one interval after the last result; the deadline is start + timeout")
    func scheduling() throws {
        var checker = try ActiveHealthCheckStateMachine(
            hostCount: 1,
            configuration: Self.configuration(),
            start: tms(250)
        )
        #expect(checker.nextCheckDue(host: 0) == tms(250))
        #expect(checker.checkDeadline(startedAt: tms(250)) == tms(1_250))
        _ = checker.record(host: 0, check: .timedOut, at: tms(1_250))
        #expect(checker.nextCheckDue(host: 0) == tms(6_250))
        #expect(checker.nextCheckDue(host: 7) == .distantFuture)
        #expect(checker.record(host: 7, check: .failed, at: t(0)) == nil)
    }
}
