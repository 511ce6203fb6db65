;; A well-behaved component implementing every point, written by hand:
;; mutate-pod and process-xcom return their input; validate-pod denies with reason "no" and
;; one warning "careful"; decide skips with reason "why"; filter-log keeps every line but drops
;; lines starting with "x", replaces lines starting with "r" by "R", and traps on a line that is
;; exactly "boom" (so a session must recover with a fresh instance). mutate-pod logs "echo".
(component

  (import "podrun:hooks/host@0.1.0" (instance $host
    (type $level' (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level (eq $level')))
    (export "log" (func (param "level" $level) (param "message" string)))))



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


  (core func $log (canon lower (func $host "log") (memory (core memory $libc "memory"))))
  (core instance $hostfns (export "log" (func $log)))


  (core module $main
    (import "env" "memory" (memory 1))
    (import "env" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "host" "log" (func $log (param i32 i32 i32)))

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
  )
  (core instance $main (instantiate $main (with "env" (instance $libc)) (with "host" (instance $hostfns))))
  (func $mutate-pod (param "a" string) (param "ctx" string) (result (result string (error string)))
    (canon lift (core func $main "echo") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (instance $mutate-pod-i (export "mutate-pod" (func $mutate-pod)))
  (export "podrun:hooks/mutate-pod@0.1.0" (instance $mutate-pod-i))
  (func $process-xcom (param "a" string) (param "ctx" string) (result (result string (error string)))
    (canon lift (core func $main "echo-xcom") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (instance $process-xcom-i (export "process-xcom" (func $process-xcom)))
  (export "podrun:hooks/process-xcom@0.1.0" (instance $process-xcom-i))
  (type $verdict (record (field "allowed" bool) (field "reason" (option string)) (field "warnings" (list string))))
  (func $validate-pod (param "pod" string) (param "ctx" string) (result (result $verdict (error string)))
    (canon lift (core func $main "validate") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (component $validate-pod-shim
    (type $t0 (record (field "allowed" bool) (field "reason" (option string)) (field "warnings" (list string))))
    (import "import-type-verdict" (type $t1 (eq $t0)))
    (import "import-func-validate-pod" (func $f (param "pod" string) (param "ctx" string) (result (result $t1 (error string)))))
    (export $t2 "verdict" (type $t1))
    (export "validate-pod" (func $f) (func (param "pod" string) (param "ctx" string) (result (result $t2 (error string))))))
  (instance $validate-pod-i (instantiate $validate-pod-shim
    (with "import-func-validate-pod" (func $validate-pod))
    (with "import-type-verdict" (type $verdict))))
  (export "podrun:hooks/validate-pod@0.1.0" (instance $validate-pod-i))
  (type $decision (variant (case "keep") (case "success") (case "skip" string) (case "fail" string)))
  (func $decide (param "outcome" string) (param "ctx" string) (result (result $decision (error string)))
    (canon lift (core func $main "decide") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (component $decide-shim
    (type $t0 (variant (case "keep") (case "success") (case "skip" string) (case "fail" string)))
    (import "import-type-decision" (type $t1 (eq $t0)))
    (import "import-func-decide" (func $f (param "outcome" string) (param "ctx" string) (result (result $t1 (error string)))))
    (export $t2 "decision" (type $t1))
    (export "decide" (func $f) (func (param "outcome" string) (param "ctx" string) (result (result $t2 (error string))))))
  (instance $decide-i (instantiate $decide-shim
    (with "import-func-decide" (func $decide))
    (with "import-type-decision" (type $decision))))
  (export "podrun:hooks/decide@0.1.0" (instance $decide-i))
  (type $line-action (variant (case "keep") (case "drop") (case "replace" string)))
  (func $filter-log (param "lines" (list string)) (param "ctx" string) (result (result (list $line-action) (error string)))
    (canon lift (core func $main "filter") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (component $filter-log-shim
    (type $t0 (variant (case "keep") (case "drop") (case "replace" string)))
    (import "import-type-line-action" (type $t1 (eq $t0)))
    (import "import-func-filter-log" (func $f (param "lines" (list string)) (param "ctx" string) (result (result (list $t1) (error string)))))
    (export $t2 "line-action" (type $t1))
    (export "filter-log" (func $f) (func (param "lines" (list string)) (param "ctx" string) (result (result (list $t2) (error string))))))
  (instance $filter-log-i (instantiate $filter-log-shim
    (with "import-func-filter-log" (func $filter-log))
    (with "import-type-line-action" (type $line-action))))
  (export "podrun:hooks/filter-log@0.1.0" (instance $filter-log-i))
)
