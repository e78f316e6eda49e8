import CKernels
import FModelCore
import Foundation

/// A run of float32 convolutions and max pools that oneDNN runs as one chain (`fm_chain_create`)
/// at one batch size: between the layers the activations stay in its blocked layout, so the
/// Winograd layers of FaceNet's stem (Conv2d_2b, Conv2d_4a) and Mixed_6a's branch no longer
/// reorder from and back to NHWC around each call. oneDNN refuses a chain without a Winograd
/// layer (nothing to gain); those layers then run one by one.
final class NativeChain: @unchecked Sendable {
    /// The program's instructions it runs, in order (where the first stands).
    let layers: [Int]
    /// The values written inside it, which the chain never materializes.
    let inner: [Int]
    /// The kernels whose mapped pages its primitives copy.
    private let kernels: [ConvKernel]
    private let handle: OpaquePointer

    /// nil when oneDNN does not make the chain (with `FMODEL_DEBUG_CONV`, it says why).
    init?(_ program: Program, layers: [Int], shapes: [Shape]) {
        var kernels: [ConvKernel] = []
        var specs: [fm_chain_layer] = []
        for i in layers {
            let instruction = program.instructions[i]
            let inShape = shapes[instruction.inputs[0]], outShape = shapes[instruction.output]
            switch instruction.step {
            case .conv(let k):
                guard case .f32(let w) = k.weights, let (activation, alpha) = k.epilogue.activation.nativeCode else { return nil }
                let params = k.nativeParameters(batch: inShape[0], win: k.window(inShape, outShape), source: Int32(FM_SRC_F32),
                                                activation: activation, alpha: alpha)
                specs.append(fm_chain_layer(max_pool: 0, conv: params, weights: UnsafeRawPointer(w.pointer), bias: k.epilogue.bias?.pointer))
                kernels.append(k)
            case .pool(let p, true):
                let win = Window(inH: inShape[1], inW: inShape[2], outH: outShape[1], outW: outShape[2], kH: p.size[0],
                                 kW: p.size[1], strides: p.strides, dilations: [1, 1], padding: p.padding)
                let c = Int32(inShape[3])
                let params = fm_conv_params(
                    n: Int32(inShape[0]), ih: Int32(win.inH), iw: Int32(win.inW), ic: c, oh: Int32(win.outH), ow: Int32(win.outW),
                    oc: c, kh: Int32(win.kH), kw: Int32(win.kW), stride_h: Int32(win.strideH), stride_w: Int32(win.strideW),
                    dilation_h: 1, dilation_w: 1, pad_top: Int32(win.padTop), pad_left: Int32(win.padLeft), scale: 1, add_dst: 0,
                    activation: Int32(FM_ACT_LINEAR), alpha: 0, src_type: Int32(FM_SRC_F32), linked_src: 0, linked_dst: 0)
                specs.append(fm_chain_layer(max_pool: 1, conv: params, weights: nil, bias: nil))
            default:
                return nil
            }
        }
        var message = [CChar](repeating: 0, count: 512)
        let made: OpaquePointer? = NativeConvolutions.creation.withLock {
            fm_chain_create(specs, Int32(specs.count), &message, message.count)
        }
        if NativeConvolutions.debug {
            let names = layers.map { program.instructions[$0].node.name }.joined(separator: ", ")
            NativeConvolutions.report("chain \(names) batch \(shapes[program.instructions[layers[0]].inputs[0]][0])",
                                      made.map { String(cString: fm_chain_implementation($0)) }, message: message)
        }
        guard let made else { return nil }
        handle = made
        self.layers = layers
        self.kernels = kernels
        inner = layers.dropLast().map { program.instructions[$0].output }
    }

    deinit { fm_chain_destroy(handle) }

    /// Its layers' implementations as oneDNN names them, joined by " > ".
    var implementation: String { String(cString: fm_chain_implementation(handle)) }

    /// Copies the kernels into the primitives' layouts (any thread); the mapped ones leave memory.
    func load() {
        precondition(fm_chain_load_weights(handle) == 0, "oneDNN kernel reorder failed")
        for k in kernels { k.weights.releaseResidentPages() }
    }

    /// Floats each of a run's two inner buffers holds.
    var bufferFloats: (Int, Int) { ((fm_chain_buffer_size(handle, 0) + 3) / 4, (fm_chain_buffer_size(handle, 1) + 3) / 4) }

    /// Runs the chain with its inner activations in `buffers` (of `bufferFloats`,
    /// free activation memory of the executor's) and its layers' workspace in `scratch`.
    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, buffers: (Buffer, Buffer), scratch: Scratch) {
        let bytes = fm_chain_workspace_size(handle)
        let status = fm_chain_run(handle, input, output, buffers.0.pointer, buffers.1.pointer, bytes > 0 ? scratch(bytes) : nil)
        precondition(status == 0, "oneDNN chain failed")
    }
}

/// The chains of a program at one batch size, as the executor's loop looks them up: each
/// instruction's part in them, by index (plain values: reading them retains nothing).
struct ChainPlan {
    enum Role {
        case none
        /// The chain runs here, where its first instruction stands.
        case first(chain: Int)
        /// A later instruction of the chain, which the chain has run.
        case covered(chain: Int)
    }

    let chains: [NativeChain]
    let roles: [Role]

    init(_ chains: [NativeChain], instructions: Int) {
        self.chains = chains
        var roles = [Role](repeating: .none, count: instructions)
        for (c, chain) in chains.enumerated() {
            roles[chain.layers[0]] = .first(chain: c)
            for i in chain.layers.dropFirst() { roles[i] = .covered(chain: c) }
        }
        self.roles = roles
    }

    /// True when a chain runs instruction `i`.
    func covers(_ i: Int) -> Bool {
        if case .none = roles[i] { return false }
        return true
    }
}
