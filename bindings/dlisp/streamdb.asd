;;;; streamdb.asd -- Common Lisp binding of libstreamdb over CFFI, with DCF's
;;;; D-LISP persistence calls.  Needs SBCL and, from Debian: cl-cffi (with
;;;; cl-babel), cl-yason, cl-trivial-gray-streams.  Tests: tests/lisp/.

(defsystem "streamdb"
  :description "StreamDb embedded document database: CFFI binding and DCF shims"
  :version "0.1.0"
  :license "LGPL-3.0-or-later"
  :depends-on ("cffi" "babel" "yason" "trivial-gray-streams")
  :serial t
  :components ((:file "package")
               (:file "library")
               (:file "ffi")
               (:file "conditions")
               (:file "util")
               (:file "db")
               (:file "streams")
               (:file "async")
               (:file "dcf")))
