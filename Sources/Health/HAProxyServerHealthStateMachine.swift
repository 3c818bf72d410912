//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

public import SimCore

/// The settings of HAProxy server health: active checks (`check inter fastinter downinter fall rise`) and
/// passive observation of traffic (`observe`, `error-limit`, `on-error`), validated at creation.
///
/// Source: HAProxy `doc/configuration.txt` §5.2 server parameters and `include/haproxy/defaults.h`
/// (`DEF_FALLTIME` 3, `DEF_RISETIME` 2), as summarized in the project reference (`loadgen-and-proxies.md` §5.2).
public struct HAProxyServerHealthConfiguration: Sendable, Equatable {
    /// Which traffic events `observe` counts.
    public enum Observe: Sendable, Equatable {
        /// `observe layer4`: connection failures are errors; any response is fine.
        case layer4
        /// `observe layer7`: statuses 100–499, 501 and 505 are fine; any other status, and connection failures
        /// and timeouts, are errors.
        case layer7
    }

    /// What happens when `error-limit` consecutive errors are observed (`on-error`).
    ///
    /// The meaning of each action is HAProxy's documented one (`doc/configuration.txt`, `on-error`); the project
    /// reference lists only the names. Every action also brings the next check forward to `fastinter` from now
    /// when `fastinter` is set.
    public enum OnError: Sendable, Equatable {
        /// `fastinter`: only bring the next check forward.
        case fastinter
        /// `fail-check` (the default): count as one failed check.
        case failCheck
        /// `sudden-death`: count as a failed check that leaves an up server one failed check away from down.
        case suddenDeath
        /// `mark-down`: mark the server down at once.
        case markDown
    }

    /// Where a server's health counter starts.
    public enum InitialHealth: Sendable, Equatable {
        /// At `rise`: up, but one failed check marks it down (how HAProxy starts servers by default).
        case up
        /// At `rise + fall − 1`: up, and `fall` failed checks are needed to mark it down.
        case fullyUp
        /// At 0: down, and `rise` passed checks are needed to mark it up.
        case down
    }

    /// The interval between checks of a server that is fully up (`inter`, default 2 s).
    public let inter: SimDuration
    /// The interval between checks while the health counter is between down and fully up (`fastinter`, default:
    /// `inter`); also what `on-error` brings the next check forward to.
    public let fastinter: SimDuration?
    /// The interval between checks of a server that is down (`downinter`, default: `inter`).
    public let downinter: SimDuration?
    /// Consecutive failed checks that mark an up server down (`fall`, default 3).
    public let fall: Int
    /// Consecutive passed checks that mark a down server up (`rise`, default 2).
    public let rise: Int
    /// The longest a passing check may take before it counts as failed; `nil` leaves timeouts to the caller.
    public let checkTimeout: SimDuration?
    /// Which traffic is observed, or `nil` for no passive observation (the default).
    public let observe: Observe?
    /// Consecutive observed errors that trigger `on_error` (`error-limit`, default 10).
    public let errorLimit: Int
    /// The action at `error-limit` (`on-error`, default `fail-check`).
    public let onError: OnError
    /// Where each server's health counter starts (default `.up`).
    public let initialHealth: InitialHealth

    /// Creates a configuration; every argument defaults to HAProxy's default.
    ///
    /// - Throws: `PolicyParameterError` for a non-positive interval or check timeout, or a `fall`, `rise` or
    ///   `error_limit` below 1.
    public init(
        inter: SimDuration = .seconds(2),
        fastinter: SimDuration? = nil,
        downinter: SimDuration? = nil,
        fall: Int = 3,
        rise: Int = 2,
        checkTimeout: SimDuration? = nil,
        observe: Observe? = nil,
        errorLimit: Int = 10,
        onError: OnError = .failCheck,
        initialHealth: InitialHealth = .up
    ) throws {
        try Validate.positive(inter, "inter")
        if let fastinter { try Validate.positive(fastinter, "fastinter") }
        if let downinter { try Validate.positive(downinter, "downinter") }
        if let checkTimeout { try Validate.positive(checkTimeout, "timeout_check") }
        try Validate.atLeast(fall, 1, "fall")
        try Validate.atLeast(rise, 1, "rise")
        try Validate.atLeast(errorLimit, 1, "error_limit")
        self.inter = inter
        self.fastinter = fastinter
        self.downinter = downinter
        self.fall = fall
        self.rise = rise
        self.checkTimeout = checkTimeout
        self.observe = observe
        self.errorLimit = errorLimit
        self.onError = onError
        self.initialHealth = initialHealth
    }

    /// Whether `observe` counts `result` as an error; `false` when nothing is observed.
    public func isObservedError(_ result: RequestResult) -> Bool {
        switch (observe, result) {
        case (nil, _), (_, .success): return false
        case (_, .gatewayFailure): return true
        case (.layer4, .httpError): return false
        case (.layer7, .httpError(let status)):
            return !((100...499).contains(status) || status == 501 || status == 505)
        }
    }
}

/// What `on-error` did when `error-limit` consecutive errors were observed on a server.
public struct HAProxyErrorLimitEvent: Sendable, Equatable {
    /// The server.
    public var host: Int
    /// The action taken.
    public var action: HAProxyServerHealthConfiguration.OnError
    /// The change of the server's state, if the action marked it down.
    public var transition: HealthTransition?
    /// The instant the next check is now due.
    public var nextCheck: SimInstant
}

/// HAProxy server health: a per-server health counter moved by active checks (`fall`, `rise`) and, with
/// `observe`, by `error-limit` consecutive traffic errors through the `on-error` action.
///
/// Source: HAProxy `doc/configuration.txt` §5.2 (`check`, `inter`, `fastinter`, `downinter`, `fall`, `rise`,
/// `observe`, `error-limit`, `on-error`) and `include/haproxy/defaults.h`, as the project reference gives them
/// (`loadgen-and-proxies.md` §5.2, §5.4). The counter follows HAProxy's check code: it runs from 0 to
/// `rise + fall − 1`, and the server is up while it is at least `rise`. A failed check decrements it and drops it to
/// 0 (down) once it falls below `rise`; a passed check increments it and lifts it to `rise + fall − 1` (up) once it
/// reaches `rise`. An observed success resets the consecutive-error count.
///
/// The next check is due `inter` after a result when the server is fully up, `downinter` (or `inter`) when it is
/// down at 0, and `fastinter` (or `inter`) in between.
public struct HAProxyServerHealthStateMachine: HostHealth {
    /// The configuration the servers run with.
    public let configuration: HAProxyServerHealthConfiguration
    private var health: [Int]
    private var consecutiveErrors: [Int]
    private var nextDue: [SimInstant]

    /// Creates the state of `hostCount` servers, each due for a check at `start`.
    ///
    /// - Throws: `PolicyParameterError` (`host_count`) if `hostCount` is negative.
    public init(hostCount: Int, configuration: HAProxyServerHealthConfiguration, start: SimInstant = .zero) throws {
        try Validate.atLeast(hostCount, 0, "host_count")
        self.configuration = configuration
        let initial: Int
        switch configuration.initialHealth {
        case .up: initial = configuration.rise
        case .fullyUp: initial = configuration.rise + configuration.fall - 1
        case .down: initial = 0
        }
        health = [Int](repeating: initial, count: hostCount)
        consecutiveErrors = [Int](repeating: 0, count: hostCount)
        nextDue = [SimInstant](repeating: start, count: hostCount)
    }

    /// The number of servers.
    public var hostCount: Int { health.count }

    /// Whether server `host` is up (its health counter is at least `rise`).
    ///
    /// - Complexity: O(1).
    public func isUsable(host: Int, at now: SimInstant) -> Bool {
        health.indices.contains(host) && health[host] >= configuration.rise
    }

    /// The health counter of `host`, in 0...`rise + fall − 1`.
    public func health(host: Int) -> Int {
        health.indices.contains(host) ? health[host] : 0
    }

    /// The consecutive observed errors of `host` since the last observed success or `on-error` action.
    public func consecutiveErrors(host: Int) -> Int {
        consecutiveErrors.indices.contains(host) ? consecutiveErrors[host] : 0
    }

    /// The instant the next check of `host` is due.
    public func nextCheckDue(host: Int) -> SimInstant {
        nextDue.indices.contains(host) ? nextDue[host] : .distantFuture
    }

    /// The check interval that applies to `host` in its current state.
    public func checkInterval(host: Int) -> SimDuration {
        let fullyUp = configuration.rise + configuration.fall - 1
        let h = health(host: host)
        if h >= fullyUp { return configuration.inter }
        if h == 0 { return configuration.downinter ?? configuration.inter }
        return configuration.fastinter ?? configuration.inter
    }

    /// Records the result of an active check of `host` that ended at `now`, and schedules the next one.
    ///
    /// - Returns: The transition, if the result marked the server up or down.
    /// - Complexity: O(1).
    public mutating func recordCheck(host: Int, result: CheckResult, at now: SimInstant) -> HealthTransition? {
        guard health.indices.contains(host) else { return nil }
        let passed: Bool
        switch result {
        case .passed(let responseTime): passed = configuration.checkTimeout.map { responseTime <= $0 } ?? true
        case .failed, .timedOut: passed = false
        }
        let wasUp = isUsable(host: host, at: now)
        if passed { passCheck(host) } else { failCheck(host) }
        nextDue[host] = now + checkInterval(host: host)
        return transition(host, wasUp: wasUp, at: now)
    }

    /// Observes the result of one request to `host` at `now` (with `observe` set); at `error-limit` consecutive
    /// errors, applies `on-error` and resets the count.
    ///
    /// - Returns: What `on-error` did, if the limit was reached; `nil` otherwise.
    /// - Complexity: O(1); does not allocate.
    public mutating func observe(host: Int, result: RequestResult, at now: SimInstant) -> HAProxyErrorLimitEvent? {
        guard configuration.observe != nil, health.indices.contains(host) else { return nil }
        guard configuration.isObservedError(result) else {
            consecutiveErrors[host] = 0
            return nil
        }
        consecutiveErrors[host] += 1
        guard consecutiveErrors[host] >= configuration.errorLimit else { return nil }
        consecutiveErrors[host] = 0
        let wasUp = isUsable(host: host, at: now)
        switch configuration.onError {
        case .fastinter:
            break
        case .failCheck:
            failCheck(host)
        case .suddenDeath:
            if health[host] > configuration.rise { health[host] = configuration.rise + 1 }
            failCheck(host)
        case .markDown:
            health[host] = configuration.rise
            failCheck(host)
        }
        if let fastinter = configuration.fastinter {
            nextDue[host] = min(nextDue[host], now + fastinter)
        }
        return HAProxyErrorLimitEvent(
            host: host,
            action: configuration.onError,
            transition: transition(host, wasUp: wasUp, at: now),
            nextCheck: nextDue[host]
        )
    }

    // MARK: - Internals

    private mutating func failCheck(_ host: Int) {
        guard health[host] > 0 else { return }
        health[host] -= 1
        if health[host] < configuration.rise { health[host] = 0 }
    }

    private mutating func passCheck(_ host: Int) {
        let fullyUp = configuration.rise + configuration.fall - 1
        guard health[host] < fullyUp else { return }
        health[host] += 1
        if health[host] >= configuration.rise { health[host] = fullyUp }
    }

    private func transition(_ host: Int, wasUp: Bool, at now: SimInstant) -> HealthTransition? {
        let isUp = isUsable(host: host, at: now)
        if isUp == wasUp { return nil }
        return isUp ? .becameHealthy(host: host) : .becameUnhealthy(host: host)
    }
}
