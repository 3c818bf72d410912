import Health
import SimCore
import Testing

@Suite("HAProxy server health")
struct HAProxyServerHealthTests {
    @Test("defaults: inter 2 s, fall 3, rise 2, error-limit 10, on-error fail-check")
    func defaults() throws {
        let configuration = try HAProxyServerHealthConfiguration()
        #expect(configuration.inter == .seconds(2))
        #expect(configuration.fall == 3)
        #expect(configuration.rise == 2)
        #expect(configuration.errorLimit == 10)
        #expect(configuration.onError == .failCheck)
        #expect(configuration.observe == nil)
    }

    @Test("fall failed checks mark a fully-up server down; rise passed checks bring it back")
    func fallAndRise() throws {
        let configuration = try HAProxyServerHealthConfiguration(initialHealth: .fullyUp)
        var servers = try HAProxyServerHealthStateMachine(hostCount: 1, configuration: configuration)
        #expect(servers.health(host: 0) == 4)
        #expect(servers.recordCheck(host: 0, result: .failed, at: t(2)) == nil)
        #expect(servers.recordCheck(host: 0, result: .timedOut, at: t(4)) == nil)
        #expect(servers.isUsable(host: 0, at: t(4)))
        #expect(servers.recordCheck(host: 0, result: .failed, at: t(6)) == .becameUnhealthy(host: 0))
        #expect(servers.health(host: 0) == 0)
        #expect(servers.recordCheck(host: 0, result: .passed(responseTime: .milliseconds(3)), at: t(8)) == nil)
        #expect(
            servers.recordCheck(host: 0, result: .passed(responseTime: .milliseconds(3)), at: t(10))
                == .becameHealthy(host: 0)
        )
        #expect(servers.health(host: 0) == 4)
    }

    @Test("servers start at rise by default: up, but one failed check marks them down")
    func initialUp() throws {
        var servers = try HAProxyServerHealthStateMachine(
            hostCount: 1,
            configuration: HAProxyServerHealthConfiguration()
        )
        #expect(servers.isUsable(host: 0, at: .zero))
        #expect(servers.recordCheck(host: 0, result: .failed, at: t(2)) == .becameUnhealthy(host: 0))
    }

    @Test("observe layer7: error-limit consecutive errors trigger fail-check; a valid status resets the count")
    func errorLimitFailCheck() throws {
        let configuration = try HAProxyServerHealthConfiguration(
            fastinter: .milliseconds(500),
            observe: .layer7,
            initialHealth: .fullyUp
        )
        var servers = try HAProxyServerHealthStateMachine(hostCount: 2, configuration: configuration)
        for _ in 0..<9 { #expect(servers.observe(host: 0, result: .httpError(status: 503), at: t(1)) == nil) }
        #expect(servers.observe(host: 0, result: .httpError(status: 404), at: t(1)) == nil)
        #expect(servers.consecutiveErrors(host: 0) == 0)
        for _ in 0..<9 { #expect(servers.observe(host: 0, result: .gatewayFailure, at: t(1)) == nil) }
        let observed = servers.observe(host: 0, result: .httpError(status: 500), at: t(1))
        let event = try #require(observed)
        #expect(event.action == .failCheck)
        #expect(event.transition == nil)
        #expect(servers.health(host: 0) == 3)
        #expect(event.nextCheck == t(0))  // the first check, due at the start, stays due: fastinter only brings forward
        #expect(servers.consecutiveErrors(host: 0) == 0)
    }

    @Test("on-error mark-down marks the server down at once; sudden-death leaves it one check from down")
    func markDownAndSuddenDeath() throws {
        let markDown = try HAProxyServerHealthConfiguration(
            observe: .layer7,
            errorLimit: 5,
            onError: .markDown,
            initialHealth: .fullyUp
        )
        var a = try HAProxyServerHealthStateMachine(hostCount: 1, configuration: markDown)
        var last: HAProxyErrorLimitEvent?
        for _ in 0..<5 { last = a.observe(host: 0, result: .httpError(status: 502), at: t(1)) }
        #expect(last?.transition == .becameUnhealthy(host: 0))
        #expect(!a.isUsable(host: 0, at: t(1)))

        let suddenDeath = try HAProxyServerHealthConfiguration(
            observe: .layer7,
            errorLimit: 5,
            onError: .suddenDeath,
            initialHealth: .fullyUp
        )
        var b = try HAProxyServerHealthStateMachine(hostCount: 1, configuration: suddenDeath)
        for _ in 0..<5 { last = b.observe(host: 0, result: .httpError(status: 504), at: t(1)) }
        #expect(last?.action == .suddenDeath)
        #expect(last?.transition == nil)
        #expect(b.health(host: 0) == 2)
        #expect(b.isUsable(host: 0, at: t(1)))
        #expect(b.recordCheck(host: 0, result: .failed, at: t(2)) == .becameUnhealthy(host: 0))
    }

    @Test("on-error fastinter only brings the next check forward, and only when fastinter is set")
    func fastinter() throws {
        let configuration = try HAProxyServerHealthConfiguration(
            inter: .seconds(2),
            fastinter: .milliseconds(200),
            observe: .layer7,
            errorLimit: 3,
            onError: .fastinter,
            initialHealth: .fullyUp
        )
        var servers = try HAProxyServerHealthStateMachine(hostCount: 1, configuration: configuration)
        _ = servers.recordCheck(host: 0, result: .passed(responseTime: .milliseconds(1)), at: t(10))
        #expect(servers.nextCheckDue(host: 0) == t(12))
        var last: HAProxyErrorLimitEvent?
        for _ in 0..<3 { last = servers.observe(host: 0, result: .gatewayFailure, at: t(11)) }
        #expect(last?.nextCheck == tms(11_200))
        #expect(servers.health(host: 0) == 4)

        let noFastinter = try HAProxyServerHealthConfiguration(observe: .layer7, errorLimit: 3, onError: .fastinter)
        var plain = try HAProxyServerHealthStateMachine(hostCount: 1, configuration: noFastinter, start: t(12))
        for _ in 0..<3 { last = plain.observe(host: 0, result: .gatewayFailure, at: t(11)) }
        #expect(last?.nextCheck == t(12))
    }

    @Test("layer7 valid statuses are 100–499, 501 and 505; layer4 sees only connection failures")
    func classification() throws {
        let layer7 = try HAProxyServerHealthConfiguration(observe: .layer7)
        for status in [100, 200, 302, 404, 499, 501, 505] {
            #expect(!layer7.isObservedError(.httpError(status: status)))
        }
        for status in [500, 502, 503, 504, 506, 599] { #expect(layer7.isObservedError(.httpError(status: status))) }
        #expect(layer7.isObservedError(.gatewayFailure))
        #expect(!layer7.isObservedError(.success))
        let layer4 = try HAProxyServerHealthConfiguration(observe: .layer4)
        #expect(!layer4.isObservedError(.httpError(status: 500)))
        #expect(layer4.isObservedError(.gatewayFailure))
        let none = try HAProxyServerHealthConfiguration()
        #expect(!none.isObservedError(.gatewayFailure))
    }

    @Test("check intervals: inter when fully up, fastinter in transition, downinter when down")
    func intervals() throws {
        let configuration = try HAProxyServerHealthConfiguration(
            inter: .seconds(2),
            fastinter: .milliseconds(500),
            downinter: .seconds(5),
            initialHealth: .fullyUp
        )
        var servers = try HAProxyServerHealthStateMachine(hostCount: 1, configuration: configuration)
        #expect(servers.checkInterval(host: 0) == .seconds(2))
        _ = servers.recordCheck(host: 0, result: .failed, at: t(2))
        #expect(servers.checkInterval(host: 0) == .milliseconds(500))
        #expect(servers.nextCheckDue(host: 0) == tms(2_500))
        _ = servers.recordCheck(host: 0, result: .failed, at: tms(2_500))
        _ = servers.recordCheck(host: 0, result: .failed, at: t(3))
        #expect(servers.checkInterval(host: 0) == .seconds(5))
        #expect(servers.nextCheckDue(host: 0) == t(8))
    }
}
