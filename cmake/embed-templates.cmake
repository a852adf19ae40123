# Generate a C source holding the built-in templates (templates/*.yaml), so
# the egressd binary never depends on files found at run time.
#   cmake -DINPUT_DIR=... -DOUTPUT=... -P embed-templates.cmake
file(GLOB files RELATIVE ${INPUT_DIR} ${INPUT_DIR}/*.yaml)
list(SORT files)
set(out "/* Generated from the .yaml files of templates/ by cmake/embed-templates.cmake. Do not edit. */\n")
string(APPEND out "#include \"render/render-int.h\"\n\n")
string(APPEND out "const struct render_builtin render_builtins[] = {\n")
foreach(f IN LISTS files)
  file(READ ${INPUT_DIR}/${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(APPEND out "    {\"${f}\", \"${escaped}\", ${len}},\n")
endforeach()
string(APPEND out "    {NULL, NULL, 0},\n};\n")
file(WRITE ${OUTPUT}.tmp "${out}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUTPUT}.tmp ${OUTPUT})
