import Limiters
import SharedModel
import SimCore
import SimRandom
import Spec
import Testing

@Suite("The replica state machine shared by the simulator and serve")
struct ReplicaStateMachineTests {
    func machine(
        workers: Int = 2,
        queue: Int = 1,
        serviceTime: Distribution = .constant(10_000_000),
        errorRate: Double = 0,
        speed: Double = 1,
        limit: ConcurrencyLimitSpec? = nil
    ) -> ReplicaStateMachine {
        var service = ServiceSpec(name: "svc", replicas: [], workers: workers, serviceTime: serviceTime)
        service.queueCapacity = queue
        service.errorRate = errorRate
        service.concurrencyLimit = limit
        let keys = ReplicaStateMachine.streamKeys(service: "svc", index: 0)
        return ReplicaStateMachine(
            service: service,
            replica: ReplicaSpec(speed: speed),
            serviceStream: RandomStream(seed: 3, replication: 0, key: keys.serviceTime),
            errorStream: RandomStream(seed: 3, replication: 0, key: keys.errors)
        )
    }

    @Test("workers, then the queue, then 503; a freed worker takes the oldest queued request")
    func admission() {
        var m = machine()
        #expect(m.arrive(1, now: 0) == .started(finish: 10_000_000, permit: nil))
        #expect(m.arrive(2, now: 5) == .started(finish: 10_000_005, permit: nil))
        #expect(m.arrive(3, now: 6) == .queued(permit: nil))
        #expect(m.arrive(4, now: 7) == .rejected(permit: nil))
        #expect(m.busy == 2 && m.waiting.count == 1)
        let next = m.releaseWorker(now: 10_000_000)
        #expect(next?.request == 3 && next?.finish == 20_000_000)
        #expect(m.releaseWorker(now: 10_000_005) == nil)
        #expect(m.busy == 1)
    }

    @Test("service times are divided by the speed and multiplied by the slowdown")
    func speedAndSlowdown() {
        var m = machine(speed: 2)
        #expect(m.arrive(1, now: 0) == .started(finish: 5_000_000, permit: nil))
        var modifiers = ReplicaModifiers()
        modifiers.apply(FaultSpec(at: .zero, duration: nil, kind: .slowdown(ReplicaSelection(service: 0), factor: 3)))
        modifiers.apply(FaultSpec(at: .zero, duration: nil, kind: .slowdown(ReplicaSelection(service: 0), factor: 2)))
        m.setModifiers(modifiers)
        #expect(m.arrive(2, now: 0) == .started(finish: 30_000_000, permit: nil))
    }

    @Test("the draws are the simulator's: the same keyed streams, in the same order")
    func draws() {
        var m = machine(workers: 1, queue: 100, serviceTime: .exponential(mean: 1_000_000), errorRate: 0.3)
        let keys = ReplicaStateMachine.streamKeys(service: "svc", index: 0)
        let service = RandomStream(seed: 3, replication: 0, key: keys.serviceTime)
        let errors = RandomStream(seed: 3, replication: 0, key: keys.errors)
        guard case .started(let first, _) = m.arrive(0, now: 0) else {
            Issue.record("not started")
            return
        }
        #expect(first == Distribution.exponential(mean: 1_000_000).sample(using: service))
        for k in 1...50 { _ = m.arrive(Int32(k), now: 0) }
        var t = first
        for k in 1...50 {
            #expect(m.drawError() == errors.bernoulli(0.3))
            guard let (request, finish) = m.releaseWorker(now: t) else {
                Issue.record("queue empty at \(k)")
                return
            }
            #expect(request == Int32(k))
            #expect(finish == t + Distribution.exponential(mean: 1_000_000).sample(using: service))
            t = finish
        }
    }

    @Test("no error draw at a zero error rate; a fault raises the rate, the higher one counts")
    func errors() {
        var m = machine(errorRate: 0)
        for _ in 0..<100 {
            let failed = m.drawError()
            #expect(!failed)
        }
        var modifiers = ReplicaModifiers()
        modifiers.apply(FaultSpec(at: .zero, duration: nil, kind: .errors(ReplicaSelection(service: 0), rate: 1)))
        m.setModifiers(modifiers)
        #expect(m.errorRate == 1)
        let failed = m.drawError()
        #expect(failed)
        var low = machine(errorRate: 0.5)
        var weak = ReplicaModifiers()
        weak.apply(FaultSpec(at: .zero, duration: nil, kind: .errors(ReplicaSelection(service: 0), rate: 0.1)))
        low.setModifiers(weak)
        #expect(low.errorRate == 0.5)
    }

    @Test("a crash voids the work in hand, hands back the queue, refuses until the last crash ends")
    func crash() {
        var m = machine(workers: 1, queue: 5)
        _ = m.arrive(1, now: 0)
        _ = m.arrive(2, now: 0)
        _ = m.arrive(3, now: 0)
        let epoch = m.epoch
        let queued = m.crash().map { Array($0) }
        #expect(queued == [2, 3])
        #expect(m.epoch != epoch && m.busy == 0 && m.waiting.isEmpty)
        let again = m.crash()  // a second, overlapping crash
        #expect(again == nil)
        #expect(m.arrive(4, now: 1) == .refused)
        let first = m.restart()
        let second = m.restart()
        #expect(!first && second)
        #expect(m.arrive(5, now: 2) == .started(finish: 10_000_002, permit: nil))
        let stopped = m.setActive(false)
        #expect(stopped)
        #expect(m.arrive(6, now: 3) == .refused)
    }

    @Test("stop-the-world pauses delay the end of work and health answers")
    func pauses() {
        var m = machine(workers: 1)
        var modifiers = ReplicaModifiers()
        // Pauses of 5 ms every 20 ms from t = 1 s, for 1 s.
        modifiers.apply(
            FaultSpec(
                at: .seconds(1),
                duration: .seconds(1),
                kind: .pause(ReplicaSelection(service: 0), every: .milliseconds(20), length: .milliseconds(5))
            )
        )
        m.setModifiers(modifiers)
        // 10 ms of work from 1.000 s: paused until 1.005 s, then 10 ms.
        #expect(m.arrive(1, now: 1_000_000_000) == .started(finish: 1_015_000_000, permit: nil))
        #expect(m.pauseWait(at: 1_020_000_000) == 5_000_000)
        #expect(m.pauseWait(at: 1_010_000_000) == 0)
        #expect(m.pauseWait(at: 2_500_000_000) == 0)
    }

    @Test("an adaptive concurrency limit rejects beyond it and learns from the answers")
    func concurrencyLimit() throws {
        let limit = ConcurrencyLimitSpec.aimd(try AIMDLimit.Configuration(initialLimit: 2, minLimit: 1, maxLimit: 10))
        var m = machine(workers: 10, queue: 10, limit: limit)
        #expect(m.concurrencyLimit == 2)
        guard case .started(_, let p1?) = m.arrive(1, now: 0), case .started(_, let p2?) = m.arrive(2, now: 0) else {
            Issue.record("no permits")
            return
        }
        #expect(m.arrive(3, now: 0) == .limited)
        m.releasePermit(p1, outcome: .dropped, now: 1_000)
        #expect(m.concurrencyLimit == 1)  // multiplicative decrease: ⌊2 × 0.9⌋
        m.releasePermit(p2, outcome: .success, now: 1_000)
        #expect(m.arrive(4, now: 2_000) != .limited)
    }

    @Test("faults select replicas by service and index, or by zone")
    func selection() {
        let a = ReplicaAddress(service: 1, replica: 2, zone: 3)
        #expect(FaultKind.crash(ReplicaSelection(service: 1)).selects(a))
        #expect(FaultKind.crash(ReplicaSelection(service: 1, replicas: [2])).selects(a))
        #expect(!FaultKind.crash(ReplicaSelection(service: 1, replicas: [0])).selects(a))
        #expect(!FaultKind.crash(ReplicaSelection(service: 0)).selects(a))
        #expect(FaultKind.zoneOutage(zone: 3).selects(a))
        #expect(!FaultKind.latency(a: 3, b: 3, delay: .seconds(1)).selects(a))
        #expect(FaultKind.latency(a: 0, b: 1, delay: .seconds(1)).scope == .network)
        #expect(FaultKind.loadSpike(client: 2, factor: 2).scope == .load(client: 2))
        #expect(FaultKind.zoneOutage(zone: 0).crashes && FaultKind.zoneOutage(zone: 0).name == "zone_outage")
    }
}
