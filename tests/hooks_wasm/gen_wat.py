import textwrap
LIBC = r'''
  ;; Memory and a bump allocator (the canonical ABI's realloc), shared by the core modules.
  (core module $libc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 4096))
    (func (export "realloc") (param $old i32) (param $oldsz i32) (param $align i32) (param $new i32) (result i32)
      (local $p i32) (local $end i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $p) (local.get $new)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end)
                                                                 (i32.mul (memory.size) (i32.const 65536)))
                                                         (i32.const 16))
                                              (i32.const 1)))
                      (i32.const -1))
            (then unreachable))))
      (global.set $bump (local.get $end))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
'''
MAIN_IMPORTS = r'''
    (import "env" "memory" (memory 1))
    (import "env" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
'''
HELPERS = r'''
    ;; result<string, string> in the return area at 16: tag, ptr, len.
    (func $ok (param $p i32) (param $l i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (local.get $p))
      (i32.store (i32.const 24) (local.get $l))
      (i32.const 16))
    (func $err (param $p i32) (param $l i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 1))
      (i32.store (i32.const 20) (local.get $p))
      (i32.store (i32.const 24) (local.get $l))
      (i32.const 16))
'''
HOST_IMPORT = r'''
  (import "podrun:hooks/host@0.1.0" (instance $host
    (type $level' (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level (eq $level')))
    (export "log" (func (param "level" $level) (param "message" string)))))
'''
HOST_LOWER = r'''
  (core func $log (canon lower (func $host "log") (memory (core memory $libc "memory"))))
  (core instance $hostfns (export "log" (func $log)))
'''
SS = '(param "a" string) (param "ctx" string) (result (result string (error string)))'
VERDICT = '(record (field "allowed" bool) (field "reason" (option string)) (field "warnings" (list string)))'
DECISION = '(variant (case "keep") (case "success") (case "skip" string) (case "fail" string))'
ACTION = '(variant (case "keep") (case "drop") (case "replace" string))'
SIGS = {
  'mutate-pod': SS,
  'process-xcom': SS,
  'validate-pod': '(param "pod" string) (param "ctx" string) (result (result {T} (error string)))',
  'decide': '(param "outcome" string) (param "ctx" string) (result (result {T} (error string)))',
  'filter-log': '(param "lines" (list string)) (param "ctx" string) (result (result (list {T}) (error string)))',
}
TYPES = {'validate-pod': ('verdict', VERDICT), 'decide': ('decision', DECISION), 'filter-log': ('line-action', ACTION)}

def component(doc, body, exports, host=False, extra_imports='', extra_lower='', extra_with='', version='0.1.0', main_imports=''):
    out = [f';; {line}' if line else ';;' for line in doc.strip().split('\n')]
    out.append('(component')
    if host:
        out.append(HOST_IMPORT)
    out.append(extra_imports)
    out.append(LIBC)
    if host:
        out.append(HOST_LOWER)
    out.append(extra_lower)
    host_import = '    (import "host" "log" (func $log (param i32 i32 i32)))\n' if host else ''
    out.append('  (core module $main' + MAIN_IMPORTS + host_import + main_imports + HELPERS + textwrap.indent(textwrap.dedent(body), '    ') + '  )')
    withs = '(with "env" (instance $libc))'
    if host:
        withs += ' (with "host" (instance $hostfns))'
    withs += extra_with
    out.append(f'  (core instance $main (instantiate $main {withs}))')
    for iface, corefn in exports:
        fname = iface
        if iface in TYPES:
            tname, tdef = TYPES[iface]
            out.append(f'  (type ${tname} {tdef})')
            out.append(f'  (func ${fname} {SIGS[iface].format(T="$"+tname)}\n    (canon lift (core func $main "{corefn}") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))')
            out.append(f'''  (component ${fname}-shim
    (type $t0 {tdef})
    (import "import-type-{tname}" (type $t1 (eq $t0)))
    (import "import-func-{fname}" (func $f {SIGS[iface].format(T="$t1")}))
    (export $t2 "{tname}" (type $t1))
    (export "{fname}" (func $f) (func {SIGS[iface].format(T="$t2")})))
  (instance ${fname}-i (instantiate ${fname}-shim
    (with "import-func-{fname}" (func ${fname}))
    (with "import-type-{tname}" (type ${tname}))))''')
        else:
            out.append(f'  (func ${fname} {SIGS[iface]}\n    (canon lift (core func $main "{corefn}") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))')
            out.append(f'  (instance ${fname}-i (export "{fname}" (func ${fname})))')
        out.append(f'  (export "podrun:hooks/{iface}@{version}" (instance ${fname}-i))')
    out.append(')')
    return '\n'.join(out) + '\n'

files = {}
files['all_points.wat'] = component('''
A well-behaved component implementing every point, written by hand:
mutate-pod and process-xcom return their input; validate-pod denies with reason "no" and
one warning "careful"; decide skips with reason "why"; filter-log keeps every line but drops
lines starting with "x", replaces lines starting with "r" by "R", and traps on a line that is
exactly "boom" (so a session must recover with a fresh instance). mutate-pod logs "echo".
''', r'''
(data (i32.const 256) "no")
(data (i32.const 264) "careful")
(data (i32.const 272) "why")
(data (i32.const 280) "echo")
(data (i32.const 288) "R")
(func (export "echo") (param i32 i32 i32 i32) (result i32)
  (call $log (i32.const 2) (i32.const 280) (i32.const 4))
  (call $ok (local.get 0) (local.get 1)))
(func (export "echo-xcom") (param i32 i32 i32 i32) (result i32)
  (call $ok (local.get 0) (local.get 1)))
;; verdict: result tag @16, record @20: allowed u8 @20, option tag @24, ptr @28, len @32, list ptr @36, len @40
(func (export "validate") (param i32 i32 i32 i32) (result i32)
  (local $w i32)
  (local.set $w (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
  (i32.store (local.get $w) (i32.const 264))
  (i32.store offset=4 (local.get $w) (i32.const 7))
  (i32.store8 (i32.const 16) (i32.const 0))
  (i32.store8 (i32.const 20) (i32.const 0))
  (i32.store8 (i32.const 24) (i32.const 1))
  (i32.store (i32.const 28) (i32.const 256))
  (i32.store (i32.const 32) (i32.const 2))
  (i32.store (i32.const 36) (local.get $w))
  (i32.store (i32.const 40) (i32.const 1))
  (i32.const 16))
;; decision: result tag @16, variant tag @20, ptr @24, len @28
(func (export "decide") (param i32 i32 i32 i32) (result i32)
  (i32.store8 (i32.const 16) (i32.const 0))
  (i32.store8 (i32.const 20) (i32.const 2))
  (i32.store (i32.const 24) (i32.const 272))
  (i32.store (i32.const 28) (i32.const 3))
  (i32.const 16))
;; lines: (ptr, n) of (ptr, len) pairs; result list of 12-byte actions (tag @0, ptr @4, len @8)
(func (export "filter") (param $lines i32) (param $n i32) (param i32 i32) (result i32)
  (local $out i32) (local $i i32) (local $s i32) (local $l i32) (local $a i32)
  (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.mul (local.get $n) (i32.const 12))))
  (block $done
    (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $s (i32.load (i32.add (local.get $lines) (i32.mul (local.get $i) (i32.const 8)))))
      (local.set $l (i32.load offset=4 (i32.add (local.get $lines) (i32.mul (local.get $i) (i32.const 8)))))
      (local.set $a (i32.add (local.get $out) (i32.mul (local.get $i) (i32.const 12))))
      (i32.store8 (local.get $a) (i32.const 0))
      (if (i32.and (i32.eq (local.get $l) (i32.const 4))
                   (i32.eq (i32.load (local.get $s)) (i32.const 0x6d6f6f62)))
        (then unreachable))
      (if (i32.gt_u (local.get $l) (i32.const 0))
        (then
          (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 0x78))
            (then (i32.store8 (local.get $a) (i32.const 1))))
          (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 0x72))
            (then
              (i32.store8 (local.get $a) (i32.const 2))
              (i32.store offset=4 (local.get $a) (i32.const 288))
              (i32.store offset=8 (local.get $a) (i32.const 1))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
  (i32.store8 (i32.const 16) (i32.const 0))
  (i32.store (i32.const 20) (local.get $out))
  (i32.store (i32.const 24) (local.get $n))
  (i32.const 16))
''', [('mutate-pod','echo'),('process-xcom','echo-xcom'),('validate-pod','validate'),('decide','decide'),('filter-log','filter')], host=True)

files['infinite_loop.wat'] = component('Hostile: mutate-pod spins forever (must be stopped by the deadline).', r'''
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (loop $forever (br $forever))
  (i32.const 0))
''', [('mutate-pod','run')])

files['deep_recursion.wat'] = component('Hostile: mutate-pod recurses without end (must hit the wasm stack limit).', r'''
(func $down (param $n i32) (result i32)
  (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (drop (call $down (i32.const 0)))
  (i32.const 0))
''', [('mutate-pod','run')])

files['memory_bomb.wat'] = component('Hostile: mutate-pod grows memory 1 MiB at a time until it fails (must hit the memory limit).', r'''
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (loop $more
    (drop (memory.grow (i32.const 16)))
    (br $more))
  (i32.const 0))
''', [('mutate-pod','run')])

files['huge_output.wat'] = component('Hostile: process-xcom returns a 4 MiB string of NULs (must be refused as too large).', r'''
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (call $ok (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 4194304))
            (i32.const 4194304)))
''', [('process-xcom','run')])

files['bad_json.wat'] = component('Hostile: mutate-pod and process-xcom return text that is not JSON.', r'''
(data (i32.const 256) "this is {not json")
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (call $ok (i32.const 256) (i32.const 17)))
''', [('mutate-pod','run'), ('process-xcom','run')])

files['bad_variant.wat'] = component('Hostile: decide returns a variant case that does not exist (tag 9).', r'''
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (i32.store8 (i32.const 16) (i32.const 0))
  (i32.store8 (i32.const 20) (i32.const 9))
  (i32.const 16))
''', [('decide','run')])

files['bad_utf8.wat'] = component('Hostile: mutate-pod returns bytes that are not UTF-8.', r'''
(data (i32.const 256) "\ff\fe\fd")
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (call $ok (i32.const 256) (i32.const 3)))
''', [('mutate-pod','run')])

files['trap.wat'] = component('Hostile: mutate-pod executes `unreachable` (what a Rust panic compiles to).', r'''
(func (export "run") (param i32 i32 i32 i32) (result i32)
  unreachable)
''', [('mutate-pod','run')])

files['guest_error.wat'] = component('mutate-pod returns err("tenant config missing").', r'''
(data (i32.const 256) "tenant config missing")
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (call $err (i32.const 256) (i32.const 21)))
''', [('mutate-pod','run')])

files['stateful.wat'] = component('''
Tries to keep state between calls: process-xcom returns how many times it has been called
in this instance, as a JSON number. With a fresh instance per call it is always 1.
''', r'''
(global $calls (mut i32) (i32.const 0))
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
  (i32.store8 (i32.const 256) (i32.add (i32.const 0x30) (global.get $calls)))
  (call $ok (i32.const 256) (i32.const 1)))
''', [('process-xcom','run')])

files['wrong_version.wat'] = component('Exports mutate-pod of a WIT version podrun does not support (0.2.0).', r'''
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (call $ok (local.get 0) (local.get 1)))
''', [('mutate-pod','run')], version='0.2.0')

files['forbidden_import.wat'] = component('Hostile: imports an interface podrun does not offer (must be rejected at load).', r'''
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (call $ok (local.get 0) (local.get 1)))
''', [('mutate-pod','run')], extra_imports=r'''
  (import "evil:net/socket@1.0.0" (instance $sock
    (export "connect" (func (param "addr" string) (result string)))))
''')

files['wasi_probe.wat'] = component('''
Hostile: imports WASI's environment and arguments and reports how many it got, as
{"env":N,"args":M} from process-xcom (N, M capped at 9). podrun's empty WASI gives 0 and 0.
''', r'''
(data (i32.const 256) "{\22env\22:0,\22args\22:0}")
(func $digit (param $n i32) (result i32)
  (i32.add (i32.const 0x30) (select (i32.const 9) (local.get $n) (i32.gt_u (local.get $n) (i32.const 9)))))
(func (export "run") (param i32 i32 i32 i32) (result i32)
  (call $env (i32.const 64))
  (call $args (i32.const 72))
  (i32.store8 (i32.const 263) (call $digit (i32.load (i32.const 68))))
  (i32.store8 (i32.const 272) (call $digit (i32.load (i32.const 76))))
  (call $ok (i32.const 256) (i32.const 18)))
''', [('process-xcom','run')], main_imports='''
    (import "wasi" "env" (func $env (param i32)))
    (import "wasi" "args" (func $args (param i32)))
''', extra_imports=r'''
  (import "wasi:cli/environment@0.2.0" (instance $wenv
    (export "get-environment" (func (result (list (tuple string string)))))
    (export "get-arguments" (func (result (list string))))))
''', extra_lower=r'''
  (core func $getenv (canon lower (func $wenv "get-environment") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $getargs (canon lower (func $wenv "get-arguments") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core instance $wasifns (export "env" (func $getenv)) (export "args" (func $getargs)))
''', extra_with=' (with "wasi" (instance $wasifns))')

for name, text in files.items():
    open(name, 'w').write(text)
