return {
  greet = function(name) return "Hello, " .. name .. "!" end,
}
