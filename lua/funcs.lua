-- `require("funcs")` before `wippy` is loaded: the same table as `require("wippy").funcs`.
return require("wippy").funcs
