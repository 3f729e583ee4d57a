-- A table of Lua functions; the entry's `method` picks one.
return {
  greet = function(name)
    return "Hello, " .. name .. "!"
  end,
}
