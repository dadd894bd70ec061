resource plan 'Microsoft.Web/serverfarms' existing = {
  name: 'plan-example'
}
