"""The repository itself: pins in sync, no import cycles, nothing outside the clone is read."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIRS = ('losses', 'resnet', 'imagenet_subsets')


def project_modules():
  """{module name: path} of every library module (not tests or scripts)."""
  modules = {}
  for name in os.listdir(ROOT):
    if name.endswith('.py') and name != 'setup.py':
      modules[name[:-3]] = os.path.join(ROOT, name)
  for package in PACKAGE_DIRS:
    for name in os.listdir(os.path.join(ROOT, package)):
      if name.endswith('.py'):
        module = package if name == '__init__.py' else package + '.' + name[:-3]
        modules[module] = os.path.join(ROOT, package, name)
  return modules


def imported_modules(path, known):
  """The project modules that the module at `path` imports at load time."""
  found = set()
  for node in ast.parse(open(path).read()).body:  # top level only
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = [node.module] + ['%s.%s' % (node.module, a.name)
                               for a in node.names]
    else:
      continue
    found.update(n for n in names if n in known)
  return found


def find_cycle(graph):
  """One import cycle of `graph` as a list of modules, or None."""
  state = {}

  def visit(module, path):
    state[module] = 'open'
    for dep in sorted(graph[module]):
      if state.get(dep) == 'open':
        return path[path.index(dep):] + [dep]
      if dep not in state:
        cycle = visit(dep, path + [dep])
        if cycle:
          return cycle
    state[module] = 'done'
    return None

  for module in sorted(graph):
    if module not in state:
      cycle = visit(module, [module])
      if cycle:
        return cycle
  return None


def test_library_has_no_import_cycle():
  modules = project_modules()
  graph = {}
  for name, path in modules.items():
    deps = imported_modules(path, modules)
    package = name.split('.')[0]
    # A package's __init__ importing its own submodules is not a cycle.
    graph[name] = {d for d in deps if not (name in PACKAGE_DIRS and
                                           d.startswith(package + '.'))}
    # `from pkg import sub` names pkg; inside pkg that is the package itself.
    graph[name] -= {name, package} if '.' in name else {name}
  assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))


def test_cycle_finder_finds_a_planted_cycle():
  graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}
  assert find_cycle(graph) == ['a', 'b', 'c', 'a']
  assert find_cycle({'a': {'b'}, 'b': set()}) is None


def _requirement_lines(path):
  lines = (l.split('#')[0].strip() for l in open(path))
  return [l for l in lines if l]


def test_requirements_txt_is_setup_py_install_requires():
  tree = ast.parse(open(os.path.join(ROOT, 'setup.py')).read())
  pins = next(ast.literal_eval(node.value) for node in tree.body
              if isinstance(node, ast.Assign) and
              node.targets[0].id == 'INSTALL_REQUIRES')
  assert _requirement_lines(os.path.join(ROOT, 'requirements.txt')) == pins


def test_setup_py_ships_every_library_module_and_the_lists():
  source = open(os.path.join(ROOT, 'setup.py')).read()
  tree = ast.parse(source)
  call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and
              getattr(n.func, 'attr', '') == 'setup')
  kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords
            if k.arg in ('py_modules', 'packages', 'package_data')}
  top_level = {m for m in project_modules() if '.' not in m} - set(PACKAGE_DIRS)
  assert set(kwargs['py_modules']) == top_level
  assert set(kwargs['packages']) == set(PACKAGE_DIRS)
  assert kwargs['package_data'] == {'imagenet_subsets': ['*.txt']}


def test_nothing_reads_outside_the_clone():
  pattern = re.compile(r"""['"/]\.\./shared|os\.pardir.*shared|'shared'""")
  offenders = []
  for folder, dirs, files in os.walk(ROOT):
    dirs[:] = [d for d in dirs if not d.startswith('.') and d != '__pycache__']
    for name in files:
      if name.endswith(('.py', '.sh')) and name != 'test_repo.py':
        path = os.path.join(folder, name)
        if pattern.search(open(path, errors='replace').read()):
          offenders.append(os.path.relpath(path, ROOT))
  assert not offenders, offenders
