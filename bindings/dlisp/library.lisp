;;;; library.lisp -- finding and loading libstreamdb.
;;;;
;;;; The library is loaded on first use (OPEN-DB, LIBRARY-VERSION, STRERROR),
;;;; not when the system is loaded, so the system always loads and a missing
;;;; library is reported as a STREAMDB-LIBRARY-MISSING condition at the call.
;;;;
;;;; Where it looks, first match wins:
;;;;   1. the PATH argument of LOAD-STREAMDB-LIBRARY;
;;;;   2. *LIBRARY-PATH*, when non-NIL;
;;;;   3. the environment variable STREAMDB_LIBRARY (full path to libstreamdb.so);
;;;;   4. the dynamic linker's standard search path (LD_LIBRARY_PATH, ld.so.cache,
;;;;      /usr/lib ...) under the names libstreamdb.so.0 and libstreamdb.so.
;;;; An explicit path (1-3) that does not load is an error: there is no silent
;;;; fallback to another copy of the library.

(in-package #:streamdb)

(defvar *library-path* nil
  "When non-NIL, the full path of the libstreamdb shared library to load.")

(defparameter *library-names* '("libstreamdb.so.0" "libstreamdb.so")
  "Names tried on the dynamic linker's search path.")

(defvar *loaded-library* nil
  "The CFFI library object of the loaded libstreamdb, or NIL.")

(defvar *library-lock* (sb-thread:make-mutex :name "streamdb library"))

(define-condition streamdb-library-missing (error)
  ((attempts :initarg :attempts :initform '() :reader streamdb-library-missing-attempts
             :documentation "The file names or paths that were tried.")
   (reason :initarg :reason :initform nil :reader streamdb-library-missing-reason
           :documentation "The loader's message for the last attempt."))
  (:report (lambda (c s)
             (format s "The StreamDb shared library (libstreamdb) could not be loaded.~@
                        Tried: ~{~A~^, ~}.~@[~%Last error: ~A~]~@
                        Set the environment variable STREAMDB_LIBRARY (or ~S) to the ~
                        full path of libstreamdb.so, or install it on the linker's search path."
                     (streamdb-library-missing-attempts c)
                     (streamdb-library-missing-reason c)
                     '*library-path*)))
  (:documentation "Signalled when libstreamdb cannot be found or loaded."))

(defun library-loaded-p ()
  "True once libstreamdb has been loaded into this image."
  (and *loaded-library* t))

(defun explicit-library-path ()
  (or *library-path*
      (let ((env (sb-ext:posix-getenv "STREAMDB_LIBRARY")))
        (and env (plusp (length env)) env))))

(defun try-load (name)
  "Loads NAME; returns (values library nil) or (values nil error-message)."
  (handler-case (values (cffi:load-foreign-library name) nil)
    (error (e) (values nil (princ-to-string e)))))

(defun load-streamdb-library (&optional path)
  "Loads libstreamdb and returns its CFFI library object.  With PATH (or
*LIBRARY-PATH*, or STREAMDB_LIBRARY) loads that file; otherwise searches the
standard path.  Signals STREAMDB-LIBRARY-MISSING on failure.  An explicit PATH
is always attempted, even when a library is already loaded."
  (sb-thread:with-recursive-lock (*library-lock*)
    (let ((explicit (or path (explicit-library-path))))
      (cond (explicit
             (let ((file (namestring (if (pathnamep explicit) explicit (pathname explicit)))))
               (unless (probe-file file)
                 (error 'streamdb-library-missing
                        :attempts (list file) :reason "no such file"))
               (multiple-value-bind (lib err) (try-load file)
                 (unless lib
                   (error 'streamdb-library-missing :attempts (list file) :reason err))
                 (setf *loaded-library* lib))))
            (t
             (let ((last-error nil))
               (dolist (name *library-names*)
                 (multiple-value-bind (lib err) (try-load name)
                   (when lib
                     (return-from load-streamdb-library (setf *loaded-library* lib)))
                   (setf last-error err)))
               (error 'streamdb-library-missing
                      :attempts *library-names* :reason last-error)))))))

(declaim (inline ensure-library))
(defun ensure-library ()
  (or *loaded-library* (load-streamdb-library)))
