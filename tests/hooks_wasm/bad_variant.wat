;; Hostile: decide returns a variant case that does not exist (tag 9).
(component


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


  (core module $main
    (import "env" "memory" (memory 1))
    (import "env" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))

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

    (func (export "run") (param i32 i32 i32 i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store8 (i32.const 20) (i32.const 9))
      (i32.const 16))
  )
  (core instance $main (instantiate $main (with "env" (instance $libc))))
  (type $decision (variant (case "keep") (case "success") (case "skip" string) (case "fail" string)))
  (func $decide (param "outcome" string) (param "ctx" string) (result (result $decision (error string)))
    (canon lift (core func $main "run") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
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
)
