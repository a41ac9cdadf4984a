# gdb helpers for filament fibers.
#
#     (gdb) source gdb/filament.py
#     (gdb) info fibers [RUNTIME-EXPR]
#     (gdb) fiber bt [-full] INDEX [RUNTIME-EXPR]
#
# RUNTIME-EXPR is any expression for a `filament::Runtime<N>` (e.g. `my_crate::RT`,
# `*rt`), a `filament::raw::Core`, or a pointer to either. Without one, the
# runtime is found from the selected thread's frames (any `filament::` frame with
# a `core` argument: `fiber_entry` at the bottom of every fiber, `run_loop` on the
# host stack), else the last expression given explicitly.
#
# Everything is read from the inferior's memory through the Rust debug info
# (Runtime.core.value: Core { current, slots, cap, in_run, now, ... },
# Slot { sp, lo, header, state, generation, runs, wait_kind, wait_obj },
# Header { name: &str, stack_size, stack: ManuallyDrop<Stack>, joiners }), so
# it works on a live process and (for `info fibers`) on a core file.
#
# `fiber bt` shows a suspended fiber's stack: the fiber's saved stack pointer
# points at the frame `__filament_switch` pushed
#
#     sp+0   MXCSR | x87 CW   (only with the `fp-control-always` feature)
#     sp+8   rbx              (offsets shift down by 8 without that slot)
#     sp+16  rbp
#     sp+24  resume address inside the fiber (pushed before jumping to the switch)
#
# and the command temporarily loads rbx/rbp/rip/rsp of frame 0 of the selected
# thread with those values, runs `bt`, and restores them (the trick goroutine and
# greenlet helpers use). It needs a live, stopped process.

import re
import struct

import gdb

PAINT = 0xF1F1F1F1F1F1F1F1
CANARY_BYTES = 32

# The high-water scan reads a stack in blocks from the low end up, starting at
# SCAN_FIRST_BLOCK bytes and doubling up to SCAN_MAX_BLOCK: a 64 KiB stack
# takes one read, a 1 GiB one about 260, and memory use stays bounded.
SCAN_FIRST_BLOCK = 64 * 1024
SCAN_MAX_BLOCK = 4 * 1024 * 1024
_PAINT_WORD = struct.pack("<Q", PAINT)
_PAINT_BLOCK = _PAINT_WORD * (SCAN_MAX_BLOCK // 8)

# Reads of the inferior's memory made by these helpers (tests/gdb.rs checks
# that `info fibers` stays within a few hundred on a 1 GiB stack).
STATS = {"memory_reads": 0, "bytes_read": 0}

_last_runtime_expr = None
_fp_slot_bytes = None


class FilamentError(gdb.GdbError):
    pass


# ---------------------------------------------------------------- helpers


def _strip(t):
    return t.strip_typedefs()


def _type_name(t):
    t = _strip(t)
    return t.name or t.tag or str(t)


def _field(val, name, depth=0):
    """val.name, looking through single-field wrappers (ManuallyDrop, MaybeDangling, NonNull...)."""
    t = _strip(val.type)
    if t.code not in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
        raise KeyError(name)
    fields = t.fields()
    for f in fields:
        if f.name == name:
            return val[f]
    if depth < 4:
        for f in fields:
            if _strip(f.type).code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
                try:
                    return _field(val[f], name, depth + 1)
                except KeyError:
                    pass
    raise KeyError(name)


def _addr(val):
    """An integer address from a raw pointer or a NonNull-like wrapper."""
    t = _strip(val.type)
    if t.code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
        return _addr(val[t.fields()[0]])
    return int(val.cast(gdb.lookup_type("u64"))) if t.code == gdb.TYPE_CODE_PTR else int(val)


def _read_memory(addr, n):
    """n bytes of the inferior's memory at addr, as bytes (counted in STATS)."""
    STATS["memory_reads"] += 1
    STATS["bytes_read"] += n
    return bytes(gdb.selected_inferior().read_memory(addr, n))


# A `Stack` token keeps its size (a multiple of 16) and its "painted" flag in
# one word, `len_painted`: the flag is the low bit.
PAINTED_BIT = 1


def _stack_size(stack):
    return int(_field(stack, "len_painted")) & ~PAINTED_BIT


def _stack_painted(stack):
    return bool(int(_field(stack, "len_painted")) & PAINTED_BIT)


def _first_unpainted(start, top):
    """The address of the first word in [start, top) that is not PAINT (top if none).

    Reads blocks from the low end up (see SCAN_FIRST_BLOCK) and stops at the
    first block that is not all paint; `start` and `top` are 8-byte aligned."""
    addr = start
    block = SCAN_FIRST_BLOCK
    while addr < top:
        n = min(block, top - addr)
        mem = _read_memory(addr, n)
        if mem != _PAINT_BLOCK[:n]:
            i = 0
            while mem[i : i + 4096] == _PAINT_BLOCK[: len(mem[i : i + 4096])]:
                i += 4096
            while mem[i : i + 8] == _PAINT_WORD:
                i += 8
            return addr + i
        addr += n
        block = min(block * 2, SCAN_MAX_BLOCK)
    return top


def _rust_str(val):
    """A Rust &str as a Python string."""
    try:
        ptr = _addr(val["data_ptr"])
        n = int(val["length"])
    except gdb.error:
        return str(val).strip('"')
    if n == 0:
        return ""
    return _read_memory(ptr, min(n, 256)).decode("utf-8", "replace")


def _enum_name(val):
    return str(val).split("::")[-1].split(" ")[0]


def _read_u64(addr):
    return struct.unpack("<Q", _read_memory(addr, 8))[0]


def _core_type():
    return gdb.lookup_type("filament::raw::Core")


def _core_from_value(v):
    """A `filament::raw::Core` value from a Runtime, a Core, or a pointer to one."""
    for _ in range(4):
        t = _strip(v.type)
        if t.code in (gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_REF):
            target = _type_name(t.target())
            if target in ("u8", "i8", "void", "()", "c_void", "core::ffi::c_void"):
                # `fiber_entry`'s `core: *mut u8` argument.
                v = v.cast(_core_type().pointer())
            v = v.dereference()
            continue
        name = _type_name(t)
        if name.startswith("filament::raw::Core"):
            return v
        if name.startswith("filament::runtime::Runtime"):
            return _field(v["core"], "value")
        raise FilamentError("%s is neither a filament Runtime nor a Core" % name)
    raise FilamentError("too many levels of indirection")


def _core_from_frames():
    """The Core named by the `core` argument of the innermost `filament::` frame that has one."""
    try:
        frame = gdb.selected_frame()
    except gdb.error:
        return None
    while frame is not None:
        name = frame.name() or ""
        if name.startswith("filament::"):
            try:
                return _core_from_value(frame.read_var("core"))
            except (ValueError, gdb.error, FilamentError):
                pass
        frame = frame.older()
    return None


def find_core(expr=None):
    """Resolves the runtime's Core: explicit expression, frame chain, last expression."""
    global _last_runtime_expr
    if expr:
        core = _core_from_value(gdb.parse_and_eval(expr))
        _last_runtime_expr = expr
        return core
    core = _core_from_frames()
    if core is not None:
        return core
    if _last_runtime_expr:
        return _core_from_value(gdb.parse_and_eval(_last_runtime_expr))
    raise FilamentError(
        "no filament runtime found in the selected thread's frames; "
        "name one, e.g. `info fibers my_crate::RT`"
    )


class FiberView:
    """What `info fibers` shows about one slot."""

    def __init__(self, core, index):
        self.core = core
        self.index = index
        self.slot_ptr = core["slots"] + index
        self.slot = self.slot_ptr.dereference()
        self.state = _enum_name(self.slot["state"])
        self.generation = int(self.slot["generation"])
        self.runs = int(self.slot["runs"])
        self.sp = _addr(self.slot["sp"])
        self.lo = _addr(self.slot["lo"])
        self.header_addr = _addr(self.slot["header"])
        # The head of the ready ring while `run` runs is the fiber on the CPU,
        # unless the thread is still on the host stack about to switch to it.
        self.current = (
            self.state == "Ready" and bool(core["in_run"]) and _addr(core["current"]) == _addr(self.slot_ptr)
        )
        self.running = self.current and self._cpu_on_own_stack()
        # Runs are counted at switch-out: the fiber at the head of the ring
        # during `run` is in (or about to start) a run not counted yet.
        if self.current:
            self.runs += 1

    def _cpu_on_own_stack(self):
        try:
            sp = int(gdb.newest_frame().read_register("rsp").cast(gdb.lookup_type("u64")))
            top = _addr(_field(self.header["stack"], "lo")) + _stack_size(self.header["stack"])
        except (gdb.error, KeyError):
            return True
        return self.lo <= sp < top

    @property
    def free(self):
        return self.state == "Free"

    @property
    def header(self):
        return self.slot["header"].dereference()

    @property
    def id(self):
        return "#%d.%d" % (self.index, self.generation)

    @property
    def name(self):
        return _rust_str(self.header["name"])

    def priority_text(self):
        """The effective priority, and the base one when inheritance raised it."""
        eff = int(self.slot["priority"])
        try:
            base = int(self.header["base_priority"])
        except gdb.error:
            return str(eff)
        return str(eff) if base == eff else "%d (base %d)" % (eff, base)

    @property
    def stack_size(self):
        return _stack_size(self.header["stack"])

    def high_water(self):
        """Bytes used below the top of a painted stack, or None."""
        stack = self.header["stack"]
        try:
            if not _stack_painted(stack):
                return None
            lo = _addr(_field(stack, "lo"))
            top = lo + _stack_size(stack)
        except KeyError:
            return None
        return top - _first_unpainted(lo + CANARY_BYTES, top)

    def state_text(self):
        if self.running:
            return "Running"
        if self.current:
            return "Ready (next, host stack)"
        if self.state == "Ready" and not bool(self.slot["started"]):
            return "Ready (not started)"
        if self.state != "Blocked":
            return self.state
        kind = _enum_name(self.slot["wait_kind"])
        obj = int(self.slot["wait_obj"])
        if kind == "Parked":
            return "Blocked parked (deadlock)"
        if kind == "Suspended":
            return "Blocked suspended"
        if kind == "Notify":
            return "Blocked notification"
        if kind == "Sleep":
            return "Blocked sleep until %d" % obj
        if kind == "Select":
            return "Blocked " + _select_text(obj)
        if kind == "Join":
            for j in range(int(self.core["cap"])):
                other = FiberView(self.core, j)
                if other.free or other.header_addr == 0:
                    continue
                joiners = _addr(other.header["joiners"].address)
                if joiners == obj:
                    return "Blocked join %s %s" % (other.id, other.name)
            return "Blocked join ?"
        where = _data_symbol(obj)
        name = _queue_name(obj)
        return "Blocked %s 0x%x%s%s" % (
            kind.lower(),
            obj,
            ' "%s"' % name if name else "",
            " (%s)" % where if where else "",
        )


# A select's sources record (`sync::select::SelectSources`): LISTED words,
# each a source's wait-queue address with the kind in the low 3 bits, then the
# number of sources.
_SELECT_LISTED = 8
_SELECT_KINDS = ["recv", "send", "semaphore", "event", "irq"]


def _select_text(addr):
    """'select on recv 0x.. "name", semaphore 0x..' for the record at addr."""
    try:
        words = struct.unpack("<%dQ" % (_SELECT_LISTED + 1), _read_memory(addr, 8 * (_SELECT_LISTED + 1)))
    except (gdb.error, gdb.MemoryError, RuntimeError):
        return "select 0x%x" % addr
    n = words[_SELECT_LISTED]
    parts = []
    for w in words[: min(n, _SELECT_LISTED)]:
        kind = w & 7
        src = w & ~7
        name = _queue_name(src)
        parts.append(
            "%s 0x%x%s"
            % (_SELECT_KINDS[kind] if kind < len(_SELECT_KINDS) else "?", src, ' "%s"' % name if name else "")
        )
    if n > _SELECT_LISTED:
        parts.append("+%d more" % (n - _SELECT_LISTED))
    return "select on " + (", ".join(parts) if parts else "nothing")


def _queue_name(addr):
    """The name given to the primitive whose wait queue is at `addr` (`named()`), or None."""
    try:
        queue_type = gdb.lookup_type("filament::wait::WaitQueue")
        queue = gdb.Value(addr).cast(queue_type.pointer()).dereference()
        name = queue["name"]
        length = int(name["length"])
        if length == 0 or length > 256:
            return None
        data = gdb.selected_inferior().read_memory(int(name["data_ptr"]), length)
        return bytes(data).decode("utf-8", "replace")
    except (gdb.error, RuntimeError, ValueError):
        return None


def _data_symbol(addr):
    """`crate::STATIC+off` for an address inside a static (the primitive a fiber waits on), else None."""
    try:
        text = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
    except gdb.error:
        return None
    m = re.match(r"^(\S+?)(?:::h[0-9a-f]{16})?(?: \+ (\d+))? in section", text)
    if not m:
        return None
    return m.group(1) + ("+%s" % m.group(2) if m.group(2) else "")


def fibers(core):
    return [FiberView(core, i) for i in range(int(core["cap"]))]


def _fp_bytes():
    """Bytes of FP-control state below rbx in a saved context (8 with `fp-control-always`, else 0)."""
    global _fp_slot_bytes
    if _fp_slot_bytes is None:
        _fp_slot_bytes = 8
        try:
            text = gdb.execute("info address __filament_switch", to_string=True)
            m = re.search(r"is at (0x[0-9a-fA-F]+)", text)
            if m:
                arch = gdb.selected_frame().architecture()
                insns = arch.disassemble(int(m.group(1), 16), count=12)
                if not any("stmxcsr" in i["asm"] for i in insns):
                    _fp_slot_bytes = 0
        except gdb.error:
            pass
    return _fp_slot_bytes


# ---------------------------------------------------------------- commands


class InfoFibers(gdb.Command):
    """List the fibers of a filament runtime.

Usage: info fibers [RUNTIME-EXPR]

RUNTIME-EXPR is a filament::Runtime (e.g. my_crate::RT), a Core, or a pointer
to either; by default the runtime of the innermost filament frame of the
selected thread (or the last one named). Columns: index, id (#index.generation),
name, priority (effective; the base one too while a mutex waiter lends it a
higher one), state (Running is the fiber on the CPU; Blocked shows what it waits for),
stack size, high-water mark in bytes (painted stacks; '-' otherwise), runs
(times switched in)."""

    def __init__(self):
        super().__init__("info fibers", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        core = find_core(arg.strip() or None)
        views = [f for f in fibers(core) if not f.free]
        print(
            "Runtime at 0x%x: capacity %d, live %d, now %d, %s"
            % (
                _addr(core.address),
                int(core["cap"]),
                int(core["spawns"]) - int(core["frees"]),
                int(core["now"]),
                "running" if bool(core["in_run"]) else "not running",
            )
        )
        rows = [("", "ID", "NAME", "PRIO", "STATE", "STACK", "HIGH-WATER", "RUNS")]
        for f in views:
            hw = f.high_water()
            rows.append(
                (
                    "*" if f.running else "",
                    f.id,
                    f.name or "-",
                    f.priority_text(),
                    f.state_text(),
                    str(f.stack_size),
                    "-" if hw is None else str(hw),
                    str(f.runs),
                )
            )
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        for r in rows:
            cells = [r[0].ljust(widths[0])]
            cells += [r[c].ljust(widths[c]) for c in (1, 2, 3, 4)]
            cells += [r[c].rjust(widths[c]) for c in (5, 6, 7)]
            print("  ".join(cells).rstrip())


class FiberPrefix(gdb.Command):
    """Commands for filament fibers: `fiber bt INDEX`."""

    def __init__(self):
        super().__init__("fiber", gdb.COMMAND_STACK, prefix=True)


class FiberBacktrace(gdb.Command):
    """Backtrace of a filament fiber.

Usage: fiber bt [-full] INDEX [RUNTIME-EXPR]

INDEX is the fiber's slot index (as in `info fibers`; `#3.0` or `3`). For the
running fiber this is a plain `bt`. For a suspended one (Ready or Blocked) the
registers of frame 0 of the selected thread are loaded from the fiber's saved
context, `bt` runs, and the registers are restored. Needs a live process."""

    def __init__(self):
        super().__init__("fiber bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        bt_args = ""
        if argv and argv[0] in ("-full", "full"):
            bt_args = " -full"
            argv = argv[1:]
        if not argv:
            raise FilamentError("usage: fiber bt [-full] INDEX [RUNTIME-EXPR]")
        m = re.match(r"^#?(\d+)(?:\.(\d+))?$", argv[0])
        if not m:
            raise FilamentError("bad fiber index %r" % argv[0])
        index = int(m.group(1))
        core = find_core(" ".join(argv[1:]) or None)
        cap = int(core["cap"])
        if index >= cap:
            raise FilamentError("no fiber %d: the runtime has %d slots" % (index, cap))
        f = FiberView(core, index)
        if m.group(2) is not None and int(m.group(2)) != f.generation:
            raise FilamentError("fiber %s is gone (slot %d holds generation %d)" % (argv[0], index, f.generation))
        if f.free:
            raise FilamentError("slot %d is free" % index)
        if f.state == "Finished":
            raise FilamentError("fiber %s %s has finished: no frames left" % (f.id, f.name))
        print("fiber %s %s (%s)" % (f.id, f.name or "-", f.state_text()))
        if f.running:
            gdb.execute("bt" + bt_args)
            return
        fp = _fp_bytes()
        rbx = _read_u64(f.sp + fp)
        rbp = _read_u64(f.sp + fp + 8)
        rip = _read_u64(f.sp + fp + 16)
        rsp = f.sp + fp + 24
        _with_registers({"rbx": rbx, "rbp": rbp, "rsp": rsp, "rip": rip}, "bt" + bt_args)


def _with_registers(values, command):
    """Runs `command` with frame 0's registers set to `values`, then restores them."""
    if not gdb.selected_inferior().pid:
        raise FilamentError("fiber bt needs a live process")
    try:
        selected_level = gdb.selected_frame().level()
    except gdb.error:
        raise FilamentError("no frame selected: is the process stopped?")
    gdb.newest_frame().select()
    saved = {r: int(gdb.parse_and_eval("$" + r).cast(gdb.lookup_type("u64"))) for r in values}
    done = []
    try:
        for reg in ("rbx", "rbp", "rsp", "rip"):
            gdb.execute("set $%s = %d" % (reg, values[reg]), to_string=True)
            done.append(reg)
        gdb.execute(command)
    finally:
        for reg in reversed(done):
            gdb.execute("set $%s = %d" % (reg, saved[reg]), to_string=True)
        frame = gdb.newest_frame()
        for _ in range(selected_level):
            older = frame.older()
            if older is None:
                break
            frame = older
        frame.select()


InfoFibers()
FiberPrefix()
FiberBacktrace()
