import Glibc

/// Where a run's activations live: one region, each buffer at an offset planned before the run
/// (the arena planning of TFLite and ONNX Runtime), rather than separately allocated buffers
/// reused by size: for the full model's first run those held 3.33 MB where at most 2.28 MB of
/// values are alive at once, the size of its plan's region.
///
/// The executor walks a run's instructions once without computing them (`beginRecording`):
/// each buffer it takes gets the time it is taken and the time it is given back, and `ArenaPlan`
/// places the buffers so that two alive at once never share a byte. Every later run with the
/// same key takes its k-th buffer at the plan's k-th offset (`beginReplay`) — after checking the
/// range against the arena buffers the run still holds: a run that strays from its plan gets a
/// buffer of its own for that request, so a plan can cost memory but never an answer.
///
/// Memory the plan does not cover comes from a pool: quantized or bfloat16 copies made inside
/// kernels, and the joined output of batch passes, which outlives a run.
final class ActivationMemory {
    /// What identifies a run's sequence of requests: the program and its instructions, the batch,
    /// which convolutions run natively, and the values kept to the end.
    struct PlanKey: Hashable {
        let fused: Bool
        let segment: Range<Int>
        let batch: Int
        let nativeFloat: Bool
        let keep: Set<Int>
    }

    private var pool = BufferPool()
    private var plans: [PlanKey: ArenaPlan] = [:]
    private var region: UnsafeMutableRawPointer?
    private var regionFloats = 0
    /// The walk being recorded: each planned buffer's floats and the events (one counter) at
    /// which it was taken and given back.
    private var recording: (key: PlanKey, buffers: [(floats: Int, taken: Int, given: Int)], events: Int)?
    /// The run being replayed: its plan, the slot of its next request, and each slot's buffer,
    /// kept across runs (the region's address is theirs) so that a run allocates no objects.
    private var replay: (key: PlanKey, plan: ArenaPlan, next: Int, buffers: [Buffer?])?
    /// The slots the replayed run holds.
    private var held: [Int] = []
    /// Each plan's slot buffers between its runs, while the region stays where it is.
    private var slotBuffers: [PlanKey: [Buffer?]] = [:]
    /// Requests of replayed runs that the plan could not serve, and slot buffers made (for tests).
    private(set) var misses = 0, buffersMade = 0

    deinit { unmapRegion() }

    /// Floats held between runs: the region and the pooled buffers.
    var capacity: Int { regionFloats + pool.capacity }

    func hasPlan(_ key: PlanKey) -> Bool { plans[key] != nil }

    /// Bytes of the region `key`'s plan needs.
    func planBytes(_ key: PlanKey) -> Int? { plans[key].map { $0.floats * MemoryLayout<Float>.stride } }

    /// For tests: every buffer of every plan at offset 0, as a plan that does not fit its run.
    func collapsePlansForTests() {
        plans = plans.mapValues { ArenaPlan(offsets: $0.offsets.map { _ in 0 }, sizes: $0.sizes) }
        slotBuffers = [:]
    }

    /// Starts a walk that computes nothing: its buffers are numbers, never memory.
    func beginRecording(_ key: PlanKey) { recording = (key, [], 0) }

    /// Starts a run of `key`'s plan (made by a recording), the region grown to hold it.
    func beginReplay(_ key: PlanKey) {
        guard let plan = plans[key] else { return }
        if regionFloats < plan.floats {
            unmapRegion()
            let bytes = plan.floats * MemoryLayout<Float>.stride
            // Anonymous pages: zero until touched, and all of them back to the system on unmap.
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let p, p != MAP_FAILED else { return }  // the run takes pooled buffers
            (region, regionFloats) = (p, plan.floats)
        }
        let buffers = slotBuffers.removeValue(forKey: key) ?? [Buffer?](repeating: nil, count: plan.offsets.count)
        replay = (key, plan, 0, buffers)
        held.removeAll(keepingCapacity: true)
    }

    /// Ends a recording (its plan kept) or a replay; requests go to the pool until the next begins.
    func end() {
        if let recording { plans[recording.key] = ArenaPlan(recording.buffers) }
        if let replay, region != nil { slotBuffers[replay.key] = replay.buffers }
        (recording, replay) = (nil, nil)
    }

    /// A buffer for `count` floats: the plan's next one when replaying and its range is free.
    func take(_ count: Int) -> Buffer {
        if recording != nil {
            recording!.buffers.append((count, recording!.events, Int.max))
            recording!.events += 1
            let slot = recording!.buffers.count - 1
            // Distinct, aligned, never dereferenced: nothing computes during a recording.
            return Buffer(arenaSlot: slot, pointer: UnsafeMutablePointer(bitPattern: (slot + 1) * 64)!, capacity: count)
        }
        guard replay != nil, let region else { return pool.take(count) }
        let slot = replay!.next
        replay!.next += 1
        let plan = replay!.plan
        if slot < plan.offsets.count, plan.sizes[slot] >= count {
            let range = plan.range(slot)
            if !held.contains(where: { plan.range($0).overlaps(range) }) {
                held.append(slot)
                if let b = replay!.buffers[slot] { return b }
                let b = Buffer(arenaSlot: slot, pointer: region.assumingMemoryBound(to: Float.self) + range.lowerBound, capacity: range.count)
                replay!.buffers[slot] = b
                buffersMade += 1
                return b
            }
        }
        misses += 1
        return pool.take(count)
    }

    /// A buffer outside the plan (see the type's comment).
    func takeUnplanned(_ count: Int) -> Buffer {
        if recording != nil { return Buffer(arenaSlot: -1, pointer: UnsafeMutablePointer(bitPattern: 64)!, capacity: count) }
        return pool.take(count)
    }

    /// Gives back a buffer the run no longer needs.
    func give(_ b: Buffer) {
        switch b.origin {
        case .arena(let slot) where recording != nil:
            guard slot >= 0 else { return }  // an unplanned request of the recording
            recording!.buffers[slot].given = recording!.events
            recording!.events += 1
        case .arena(let slot):
            if let i = held.firstIndex(of: slot) { held.swapAt(i, held.count - 1); held.removeLast() }
        case .heap where recording == nil:
            pool.give(b)
        default:
            break  // borrowed memory, and real buffers bound into a recording
        }
    }

    /// Frees the pooled buffers, and with `region` the arena's memory (the plans stay).
    func release(region dropRegion: Bool) {
        pool = BufferPool()
        if dropRegion { unmapRegion() }
    }

    private func unmapRegion() {
        if let region { munmap(region, regionFloats * MemoryLayout<Float>.stride) }
        slotBuffers = [:]
        (region, regionFloats) = (nil, 0)
    }
}

/// Offsets for buffers with known lifetimes such that two alive at the same time never overlap:
/// the largest first, each at the lowest offset clear of those already placed that it meets
/// (the greedy-by-size placement of TFLite's arena planner). Sizes are rounded up to 64 bytes.
/// Which buffers meet is found once, by a sweep over the events, so that the plan of a graph of
/// many nodes takes time in proportion to the pairs alive together, not to the square of the
/// nodes: comparing every buffer with every one placed ran for hours on a chain of 200,000
/// (an 18 MB `.fmodel`). Past `maxMeetings` pairs (a hostile graph that keeps a hundred
/// thousand activations alive at once), each buffer gets a place of its own instead: memory
/// that such a graph would need all of anyway.
struct ArenaPlan {
    /// Per buffer, in the order taken: its offset and size, in floats.
    let offsets: [Int]
    let sizes: [Int]
    /// The region's size in floats.
    let floats: Int

    /// Most pairs of buffers alive at the same time that the greedy placement is given.
    static let maxMeetings = 1 << 22

    /// - Parameter buffers: each buffer's floats and the events (one counter) at which it is
    ///   taken and given back; alive from `taken` until `given`.
    init(_ buffers: [(floats: Int, taken: Int, given: Int)]) {
        let sizes = buffers.map { ($0.floats + 15) / 16 * 16 }
        guard let meets = Self.meetings(buffers) else {
            var end = 0
            self.init(offsets: sizes.map { size in defer { end += size }; return end }, sizes: sizes)
            return
        }
        var offsets = [Int](repeating: 0, count: buffers.count), placed = [Bool](repeating: false, count: buffers.count)
        let order = buffers.indices.sorted { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }
        for i in order {
            let met = meets[i].lazy.filter { placed[$0] }.map { offsets[$0]..<(offsets[$0] + sizes[$0]) }
                .sorted { $0.lowerBound < $1.lowerBound }
            var offset = 0
            for range in met {
                if range.lowerBound - offset >= sizes[i] { break }
                offset = max(offset, range.upperBound)
            }
            offsets[i] = offset
            placed[i] = true
        }
        self.init(offsets: offsets, sizes: sizes)
    }

    /// Per buffer, the others alive at some time it is (`a.taken < b.given && b.taken <
    /// a.given`); nil past `maxMeetings` pairs. A sweep in the order taken: a buffer meets only
    /// ones taken no later that are not yet given back.
    static func meetings(_ buffers: [(floats: Int, taken: Int, given: Int)]) -> [[Int]]? {
        var meets = [[Int]](repeating: [], count: buffers.count), alive: [Int] = [], pairs = 0
        for b in buffers.indices.sorted(by: { (buffers[$0].taken, $0) < (buffers[$1].taken, $1) }) {
            alive.removeAll { buffers[$0].given <= buffers[b].taken }
            for a in alive where buffers[a].taken < buffers[b].given {
                meets[a].append(b)
                meets[b].append(a)
                pairs += 1
            }
            guard pairs <= maxMeetings else { return nil }
            alive.append(b)
        }
        return meets
    }

    /// Slot `i`'s floats in the region.
    func range(_ i: Int) -> Range<Int> { offsets[i]..<(offsets[i] + sizes[i]) }

    init(offsets: [Int], sizes: [Int]) {
        (self.offsets, self.sizes) = (offsets, sizes)
        floats = zip(offsets, sizes).map(+).max() ?? 0
    }
}
